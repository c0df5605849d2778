# bash completion for connroute(8): commands, their flags, global options,
# and files for the options that take one.

_connroute() {
	local cur prev words cword
	if declare -F _init_completion >/dev/null; then
		_init_completion || return
	else
		cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
		words=("${COMP_WORDS[@]}") cword=$COMP_CWORD
	fi

	local commands="render check dump-config apply flush status watch hotplug help"
	local global="-c --config -v --verbose --nft --ubus --lock --lock-timeout --timeout --ids --state --init-script
		--rt-tables --no-rt-tables --syslog -h --help -V --version"

	case $prev in
	-c | --config | --nft | --ubus | --lock | --ids | --state | --init-script | --rt-tables | --syslog)
		COMPREPLY=($(compgen -f -- "$cur"))
		compopt -o filenames 2>/dev/null
		return
		;;
	--format)
		COMPREPLY=($(compgen -W "json nft" -- "$cur"))
		return
		;;
	--lock-timeout | --timeout)
		return
		;;
	esac

	# The command word: the first word that is neither an option nor the
	# value of one.
	local i command=""
	for ((i = 1; i < cword; i++)); do
		case ${words[i]} in
		-c | --config | --nft | --ubus | --lock | --lock-timeout | --timeout | --ids | --state | --init-script | --rt-tables | --syslog | --format) ((i++)) ;;
		-*) ;;
		*) command=${words[i]}; break ;;
		esac
	done

	local own=""
	case $command in
	render) own="--format --routes" ;;
	check) own="--diff" ;;
	apply) own="--force" ;;
	status) own="--json" ;;
	help)
		# `help COMMAND`; the global options are accepted after it too.
		if [[ $cur != -* ]]; then
			COMPREPLY=($(compgen -W "$commands" -- "$cur"))
			return
		fi
		;;
	esac

	if [[ -z $command && $cur != -* ]]; then
		COMPREPLY=($(compgen -W "$commands" -- "$cur"))
	else
		COMPREPLY=($(compgen -W "$own $global" -- "$cur"))
	fi
}
complete -F _connroute connroute
