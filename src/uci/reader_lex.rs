//! The reader's lexer: libuci's in-place line buffer (`uci_getln`),
//! whitespace, backslashes, quoted strings and arguments, compacted inside
//! the buffer with terminators, as libuci's `parse_str` and `next_arg` do.

use super::{Charset, Mode, ParseError, Reader, Step, is_space, valid};

impl Reader<'_> {
    pub(super) fn at(&self, i: usize) -> u8 {
        self.buf.get(i).copied().unwrap_or(0)
    }

    pub(super) fn cur(&self) -> u8 {
        self.at(self.pos)
    }

    pub(super) fn put(&mut self, i: usize, c: u8) {
        if i < self.buf.len() {
            self.buf[i] = c;
        } else if c != 0 {
            self.buf.resize(i, 0);
            self.buf.push(c);
        }
    }

    pub(super) fn strlen(&self, from: usize) -> usize {
        self.buf.get(from..).map_or(0, |rest| {
            rest.iter().position(|&c| c == 0).unwrap_or(rest.len())
        })
    }

    pub(super) fn error(&self, reason: &'static str) -> ParseError {
        ParseError {
            reason,
            line: self.line,
            byte: self.pos,
        }
    }

    /// Reads the next physical line into the buffer at `offset`
    /// (libuci's `uci_getln`). At end of input the buffer ends at `offset`.
    pub(super) fn getln(&mut self, offset: usize) -> bool {
        self.buf.truncate(offset);
        let rest = &self.input[self.next..];
        if rest.is_empty() {
            return false;
        }
        let len = rest
            .iter()
            .position(|&c| c == b'\n')
            .map_or(rest.len(), |i| i + 1);
        self.buf.extend_from_slice(&rest[..len]);
        self.next += len;
        self.filled = self.buf.len();
        if rest[len - 1] == b'\n' {
            self.line += 1;
        }
        true
    }

    pub(super) fn skip_whitespace(&mut self) {
        while self.cur() != 0 && is_space(self.cur()) {
            self.pos += 1;
        }
    }

    /// After a backslash: true when the escaped byte is to be kept, false
    /// when it was a line continuation (the next line is pulled in).
    pub(super) fn backslash(&mut self) -> bool {
        self.pos += 1;
        let c = self.cur();
        let crlf_end = c == b'\r' && self.at(self.pos + 1) == b'\n' && self.at(self.pos + 2) == 0;
        if c == 0 || c == b'\n' || crlf_end {
            self.getln(self.pos);
            return false;
        }
        true
    }

    pub(super) fn copy(&mut self, target: &mut usize) {
        let c = self.cur();
        self.put(*target, c);
        *target += 1;
        self.pos += 1;
    }

    pub(super) fn double_quote(&mut self, target: &mut usize) -> Step<()> {
        self.pos += 1;
        loop {
            match self.cur() {
                b'"' => {
                    self.pos += 1;
                    return Ok(());
                }
                0 => {
                    self.getln(self.pos);
                    if self.cur() == 0 {
                        return Err(self.error("EOF with unterminated \""));
                    }
                }
                b'\\' => {
                    if self.backslash() {
                        self.copy(target);
                    }
                }
                _ => self.copy(target),
            }
        }
    }

    pub(super) fn single_quote(&mut self, target: &mut usize) -> Step<()> {
        self.pos += 1;
        loop {
            match self.cur() {
                b'\'' => {
                    self.pos += 1;
                    return Ok(());
                }
                0 => {
                    self.getln(self.pos);
                    if self.cur() == 0 {
                        return Err(self.error("EOF with unterminated '"));
                    }
                }
                _ => self.copy(target),
            }
        }
    }

    /// One argument token built from unquoted, `'…'` and `"…"` pieces,
    /// compacted in place starting at `target`.
    pub(super) fn string(&mut self, target: &mut usize) -> Step<()> {
        let mut next = true;
        loop {
            match self.cur() {
                b'\'' => self.single_quote(target)?,
                b'"' => self.double_quote(target)?,
                b'#' => {
                    let p = self.pos;
                    self.put(p, 0);
                    break;
                }
                0 => break,
                b';' => {
                    next = false;
                    break;
                }
                b'\\' => {
                    if self.backslash() {
                        self.copy(target);
                    }
                }
                _ => self.copy(target),
            }
            let c = self.cur();
            if c == 0 || is_space(c) {
                break;
            }
        }
        if self.cur() != 0 && next {
            self.pos += 1;
        }
        let t = *target;
        self.put(t, 0);
        Ok(())
    }

    /// Reads one argument; returns its start offset in the buffer.
    pub(super) fn arg(&mut self, required: bool, charset: Option<Charset>) -> Step<usize> {
        self.skip_whitespace();
        let start = self.pos;
        if self.cur() == b';' {
            let p = self.pos;
            self.put(p, 0);
            self.pos += 1;
        } else {
            let mut target = start;
            self.string(&mut target)?;
        }
        if self.at(start) == 0 {
            if required {
                return Err(self.error("insufficient arguments"));
            }
            return Ok(start);
        }
        if let Some(cs) = charset {
            let text = self.text(start);
            if !valid(&text, cs) {
                return Err(self.error("invalid character in name field"));
            }
        }
        Ok(start)
    }

    pub(super) fn text(&self, start: usize) -> Vec<u8> {
        let len = self.strlen(start);
        self.buf
            .get(start..start + len)
            .unwrap_or_default()
            .to_vec()
    }

    pub(super) fn assert_eol(&mut self) -> Step<()> {
        self.skip_whitespace();
        let start = self.arg(false, None)?;
        if self.at(start) != 0 && self.mode == Mode::Strict {
            return Err(self.error("too many arguments"));
        }
        Ok(())
    }

    /// Moves past the command word (strtok put a terminator after it).
    pub(super) fn past_word(&mut self, eof_reason: &'static str) -> Step<()> {
        let add = self.strlen(self.pos) + 1;
        if self.pos + add > self.filled {
            return Err(self.error(eof_reason));
        }
        self.pos += add;
        Ok(())
    }
}
