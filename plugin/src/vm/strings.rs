//! Lua's pattern functions (`string.find`, `match`, `gmatch`, `gsub`) in Rust, charging their
//! work to the instruction budget.
//!
//! Lua's matcher (`lstrlib.c`) runs in C to its end without going back to the VM, so the count
//! hook that enforces the budget never sees it: `string.find(("a"):rep(200000), ".-.-.-.-b")`
//! would hold a callback for hours, and so would a plain `find` of a long needle in a long
//! subject. This is a port of Lua 5.4's matcher, with its results and error messages, that
//! counts its steps and charges them to the budget (`budget::charge`), which stops the callback
//! once it is spent: `pcall` in the script cannot swallow that.
//!
//! The work is counted in steps of roughly one VM instruction's cost: each pattern item tried
//! (each round of C's `match`, so each subject position tried too), each character a repetition
//! or `%b` runs over, each 16-byte block compared (a back-reference, the rest of a plain `find`'s
//! needle), each 8 bytes a plain `find` scans, and each 16 bytes copied into a result.
//!
//! Strings are bytes, and the classes (`%a`, `%s`, ...) have their C-locale (ASCII) meaning, as
//! in the vendored Lua.

use std::cell::Cell;

use mlua::{Function, Integer, Lua, LuaString, MultiValue, Table, Value};

use crate::userdata::script_error;
use crate::vm::budget::charge;

/// Captures a pattern may have (`LUA_MAXCAPTURES`).
const MAX_CAPTURES: usize = 32;
/// How deep the matcher may recurse (`MAXCCALLS`): past it, "pattern too complex".
const MAX_DEPTH: u32 = 200;
/// The characters that make `find` run the matcher rather than a plain search.
const SPECIALS: &[u8] = b"^$*+?.([%-";
/// Steps counted locally before they are charged: charging on every step would cost more than
/// the steps.
const CHARGE_EVERY: u64 = 1024;
/// Bytes copied into results (captures, `gsub`'s output) or compared per step: copying and
/// comparing are much cheaper per byte than a VM instruction, but a long copy is still work.
const BYTES_PER_STEP: u64 = 16;
/// Bytes scanned per step by a plain `find`, which looks at a word at a time.
const SCAN_BYTES_PER_STEP: u64 = 8;
/// `gsub` hands its output to Lua in pieces this big, so that Lua's memory limit sees it grow
/// (the C version builds it in Lua's memory too).
const OUTPUT_PIECE: usize = 64 * 1024;

/// Replaces the pattern functions of the `string` table with budget-charging ones. Method calls
/// (`s:find(p)`) reach them too: the string metatable's `__index` is that table.
pub(super) fn install(lua: &Lua) -> mlua::Result<()> {
    let string: Table = lua.globals().get("string")?;
    string.set(
        "find",
        lua.create_function(|lua, args| find_aux(lua, args, true))?,
    )?;
    string.set(
        "match",
        lua.create_function(|lua, args| find_aux(lua, args, false))?,
    )?;
    string.set("gmatch", lua.create_function(gmatch)?)?;
    string.set("gsub", lua.create_function(gsub)?)?;
    Ok(())
}

/// `string.find` and `string.match` (`str_find_aux`).
fn find_aux(lua: &Lua, mut args: MultiValue, find: bool) -> mlua::Result<MultiValue> {
    let name = if find { "find" } else { "match" };
    let (subject, pattern, init, plain) = (
        args.pop_front(),
        args.pop_front(),
        args.pop_front(),
        args.pop_front(),
    );
    // The argument list, emptied, holds the results.
    let mut out = args;
    out.clear();
    let subject = check_string(lua, subject, 1, name)?;
    let pattern = check_string(lua, pattern, 2, name)?;
    let (src, pat) = (subject.as_bytes(), pattern.as_bytes());
    let init = start_position(opt_integer(lua, init, 3, name, 1)?, src.len()) - 1;
    if init > src.len() {
        // Starts after the end: nothing to find.
        out.push_back(Value::Nil);
        return Ok(out);
    }
    if find && (truthy(plain.as_ref()) || !pat.iter().any(|c| SPECIALS.contains(c))) {
        let mut meter = Meter::default();
        let found = find_plain(&src[init..], &pat, &mut meter)?;
        meter.flush()?;
        match found {
            Some(at) => {
                out.push_back(Value::Integer((init + at + 1) as Integer));
                out.push_back(Value::Integer((init + at + pat.len()) as Integer));
            }
            None => out.push_back(Value::Nil),
        }
        return Ok(out);
    }
    let anchor = pat.first() == Some(&b'^');
    let mut ms = MatchState::new(&src, &pat[usize::from(anchor)..]);
    let mut start = init;
    loop {
        ms.reset();
        if let Some(end) = ms.match_at(start)? {
            if find {
                out.push_back(Value::Integer(start as Integer + 1));
                out.push_back(Value::Integer(end as Integer));
                ms.push_captures(lua, None, &mut out)?;
            } else {
                ms.push_captures(lua, Some((start, end)), &mut out)?;
            }
            ms.meter.flush()?;
            return Ok(out);
        }
        if start >= src.len() || anchor {
            break;
        }
        start += 1;
    }
    ms.meter.flush()?;
    out.push_back(Value::Nil);
    Ok(out)
}

/// `string.gmatch`: an iterator over the matches. As in 5.4, a match may not be empty right
/// where the previous one ended, and `^` is no anchor here (it would stop the iteration).
fn gmatch(lua: &Lua, mut args: MultiValue) -> mlua::Result<Function> {
    let (subject, pattern, init) = (args.pop_front(), args.pop_front(), args.pop_front());
    let subject = check_string(lua, subject, 1, "gmatch")?;
    let pattern = check_string(lua, pattern, 2, "gmatch")?;
    let len = subject.as_bytes().len();
    let init = start_position(opt_integer(lua, init, 3, "gmatch", 1)?, len) - 1;
    // Where the next search starts (past the end once nothing is left), and where the last
    // match ended.
    let next = Cell::new(init.min(len + 1));
    let last_match = Cell::new(None);
    lua.create_function(move |lua, ()| {
        let (src, pat) = (subject.as_bytes(), pattern.as_bytes());
        let mut ms = MatchState::new(&src, &pat);
        let mut out = MultiValue::new();
        for start in next.get()..=src.len() {
            ms.reset();
            if let Some(end) = ms.match_at(start)?
                && Some(end) != last_match.get()
            {
                next.set(end);
                last_match.set(Some(end));
                ms.push_captures(lua, Some((start, end)), &mut out)?;
                ms.meter.flush()?;
                return Ok(out);
            }
        }
        // Nothing more (C would search again, and find nothing again, on every call).
        next.set(src.len() + 1);
        ms.meter.flush()?;
        Ok(out)
    })
}

/// What `gsub` replaces matches with.
enum Replacement {
    /// A string (or number) with `%0`-`%9` and `%%`.
    Text(LuaString),
    /// Indexed with the first capture (or the whole match).
    Table(Table),
    /// Called with the captures (or the whole match).
    Function(Function),
}

/// `string.gsub`.
fn gsub(lua: &Lua, mut args: MultiValue) -> mlua::Result<MultiValue> {
    let (subject, pattern, replacement, max) = (
        args.pop_front(),
        args.pop_front(),
        args.pop_front(),
        args.pop_front(),
    );
    let mut out = args;
    out.clear();
    let subject = check_string(lua, subject, 1, "gsub")?;
    let pattern = check_string(lua, pattern, 2, "gsub")?;
    let (src, pat) = (subject.as_bytes(), pattern.as_bytes());
    // Checked in C's order: the count before the replacement's type.
    let max = opt_integer(lua, max, 4, "gsub", src.len() as Integer + 1)?;
    let replacement = match replacement {
        Some(Value::String(text)) => Replacement::Text(text),
        Some(number @ (Value::Integer(_) | Value::Number(_))) => {
            Replacement::Text(check_string(lua, Some(number), 3, "gsub")?)
        }
        Some(Value::Table(table)) => Replacement::Table(table),
        Some(Value::Function(function)) => Replacement::Function(function),
        other => {
            return Err(type_error(
                lua,
                other.as_ref(),
                3,
                "gsub",
                "string/function/table",
            ));
        }
    };
    let text_bytes = match &replacement {
        Replacement::Text(text) => Some(text.as_bytes()),
        _ => None,
    };
    let text: &[u8] = text_bytes.as_deref().unwrap_or_default();
    let anchor = pat.first() == Some(&b'^');
    let mut ms = MatchState::new(&src, &pat[usize::from(anchor)..]);
    let mut output = Output::new(lua);
    // The subject is copied to the output lazily, up to `copied`, when a match is replaced.
    let (mut at, mut copied, mut last_match) = (0, 0, None);
    let (mut count, mut changed): (Integer, bool) = (0, false);
    while count < max {
        ms.reset();
        match ms.match_at(at)? {
            Some(end) if Some(end) != last_match => {
                count += 1;
                output.push(&src[copied..at], &mut ms.meter)?;
                changed |= ms.add_value(lua, &mut output, (at, end), &replacement, text)?;
                (at, copied, last_match) = (end, end, Some(end));
            }
            _ if at < src.len() => at += 1,
            _ => break,
        }
        if anchor {
            break;
        }
    }
    let result = if changed {
        output.push(&src[copied..], &mut ms.meter)?;
        output.finish(&mut ms.meter)?
    } else {
        subject
    };
    ms.meter.flush()?;
    out.push_back(Value::String(result));
    out.push_back(Value::Integer(count));
    Ok(out)
}

/// Work done outside the VM, in steps of about one VM instruction, charged to the budget of the
/// running callback every [`CHARGE_EVERY`] steps and when the call ends ([`Meter::flush`]).
#[derive(Default)]
struct Meter {
    steps: u64,
    /// Bytes copied not yet counted as a step.
    bytes: u64,
}

impl Meter {
    /// Counts `steps`; fails as soon as the budget is spent.
    #[inline]
    fn add(&mut self, steps: u64) -> mlua::Result<()> {
        self.steps += steps;
        if self.steps >= CHARGE_EVERY {
            self.flush()
        } else {
            Ok(())
        }
    }

    /// Counts `len` bytes copied into a result.
    fn copied(&mut self, len: usize) -> mlua::Result<()> {
        self.bytes += len as u64;
        let steps = self.bytes / BYTES_PER_STEP;
        self.bytes %= BYTES_PER_STEP;
        self.add(steps)
    }

    /// Charges the steps counted so far.
    fn flush(&mut self) -> mlua::Result<()> {
        match std::mem::take(&mut self.steps) {
            0 => Ok(()),
            steps => charge(steps),
        }
    }
}

/// `lmemfind`: where `needle` first occurs in `haystack`. The scan for the needle's first byte
/// goes a word at a time: a step per [`SCAN_BYTES_PER_STEP`] bytes; each comparison of the rest
/// is a step per block compared (see [`compare`]): a long needle of one repeated byte makes the
/// search quadratic.
fn find_plain(haystack: &[u8], needle: &[u8], meter: &mut Meter) -> mlua::Result<Option<usize>> {
    let Some((&first, rest)) = needle.split_first() else {
        return Ok(Some(0)); // the empty string is everywhere
    };
    if needle.len() > haystack.len() {
        return Ok(None);
    }
    // The last place the needle could start.
    let last = haystack.len() - needle.len();
    let mut from = 0;
    while from <= last {
        let Some(skipped) = find_byte(first, &haystack[from..=last]) else {
            meter.add((last + 1 - from) as u64 / SCAN_BYTES_PER_STEP)?;
            return Ok(None);
        };
        let at = from + skipped;
        let (equal, blocks) = compare(&haystack[at + 1..at + needle.len()], rest);
        meter.add(skipped as u64 / SCAN_BYTES_PER_STEP + blocks)?;
        if equal {
            return Ok(Some(at));
        }
        from = at + 1;
    }
    Ok(None)
}

/// Whether `a` and `b` (of the same length) are equal, and in how many blocks of
/// [`BYTES_PER_STEP`] bytes (and a last, shorter one) that was found: a step each, so that a
/// comparison costs what it looked at, not the whole length, as they usually differ early.
fn compare(a: &[u8], b: &[u8]) -> (bool, u64) {
    const BLOCK: usize = BYTES_PER_STEP as usize;
    let (mut a_blocks, mut b_blocks) = (a.chunks_exact(BLOCK), b.chunks_exact(BLOCK));
    let mut blocks = 1;
    for (x, y) in (&mut a_blocks).zip(&mut b_blocks) {
        // Fixed-size arrays compare inline, where slices would call `memcmp` per block.
        let x: [u8; BLOCK] = x.try_into().unwrap_or_default();
        let y: [u8; BLOCK] = y.try_into().unwrap_or_default();
        if x != y {
            return (false, blocks);
        }
        blocks += 1;
    }
    (a_blocks.remainder() == b_blocks.remainder(), blocks)
}

/// Where `byte` first is in `haystack`, looking at eight bytes at a time (std has no public
/// `memchr`).
fn find_byte(byte: u8, haystack: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    let repeated = ONES * u64::from(byte);
    let mut offset = 0;
    for word in haystack.chunks_exact(8) {
        let bytes: [u8; 8] = word.try_into().unwrap_or_default();
        // Zero where the bytes are equal; the classic test for a zero byte.
        let diff = u64::from_ne_bytes(bytes) ^ repeated;
        if diff.wrapping_sub(ONES) & !diff & HIGHS != 0 {
            break;
        }
        offset += 8;
    }
    haystack[offset..]
        .iter()
        .position(|&c| c == byte)
        .map(|i| offset + i)
}

/// What the matcher's functions return: the error boxed, to keep the result in registers.
type Step<T> = Result<T, Box<mlua::Error>>;

/// A pattern error, out of the matcher's hot path.
#[cold]
#[inline(never)]
fn fail<T>(message: &'static str) -> Step<T> {
    Err(Box::new(script_error(message)))
}

/// The length of a capture, or what it is while it has none.
#[derive(Clone, Copy, PartialEq, Eq)]
enum CaptureLen {
    /// Opened, not closed yet (`CAP_UNFINISHED`).
    Unfinished,
    /// `()`: captures its position (`CAP_POSITION`).
    Position,
    Closed(usize),
}

#[derive(Clone, Copy)]
struct Capture {
    start: usize,
    len: CaptureLen,
}

/// A capture's value.
enum Captured {
    /// The bytes `start..end` of the subject.
    Text(usize, usize),
    /// A position capture: the 1-based position.
    Position(usize),
}

/// The matcher's state (`MatchState`): positions are indices in `src` and `pat`, and reading
/// past the end of either gives 0, as C's terminating NUL does.
struct MatchState<'a> {
    src: &'a [u8],
    /// The pattern, without a leading `^` anchor.
    pat: &'a [u8],
    /// Recursion levels left (`matchdepth`).
    depth: u32,
    /// Captures opened so far, closed or not.
    level: usize,
    captures: [Capture; MAX_CAPTURES],
    meter: Meter,
}

impl<'a> MatchState<'a> {
    fn new(src: &'a [u8], pat: &'a [u8]) -> Self {
        MatchState {
            src,
            pat,
            depth: MAX_DEPTH,
            level: 0,
            captures: [Capture {
                start: 0,
                len: CaptureLen::Unfinished,
            }; MAX_CAPTURES],
            meter: Meter::default(),
        }
    }

    /// Ready for a new match attempt (`reprepstate`).
    fn reset(&mut self) {
        self.depth = MAX_DEPTH;
        self.level = 0;
    }

    #[inline]
    fn pat_at(&self, p: usize) -> u8 {
        self.pat.get(p).copied().unwrap_or(0)
    }

    #[inline]
    fn src_at(&self, s: usize) -> u8 {
        self.src.get(s).copied().unwrap_or(0)
    }

    /// Matches the whole pattern against the subject from `s`.
    fn match_at(&mut self, s: usize) -> mlua::Result<Option<usize>> {
        self.do_match(s, 0).map_err(|err| *err)
    }

    /// Matches the pattern from `p` against the subject from `s` (`match`): the end of the
    /// match, or `None`. Each pattern item tried is a step.
    fn do_match(&mut self, mut s: usize, mut p: usize) -> Step<Option<usize>> {
        if self.depth == 0 {
            return fail("pattern too complex");
        }
        self.depth -= 1;
        let end = self.pat.len();
        // C's `goto init`, for the tail calls.
        let result = loop {
            self.meter.add(1)?;
            if p == end {
                break Some(s);
            }
            match self.pat[p] {
                b'(' => {
                    break if self.pat_at(p + 1) == b')' {
                        self.start_capture(s, p + 2, CaptureLen::Position)?
                    } else {
                        self.start_capture(s, p + 1, CaptureLen::Unfinished)?
                    };
                }
                b')' => break self.end_capture(s, p + 1)?,
                b'$' if p + 1 == end => break (s == self.src.len()).then_some(s),
                b'%' => match self.pat_at(p + 1) {
                    b'b' => match self.match_balance(s, p + 2)? {
                        Some(after) => {
                            (s, p) = (after, p + 4);
                            continue;
                        }
                        None => break None,
                    },
                    b'f' => {
                        p += 2;
                        if self.pat_at(p) != b'[' {
                            return fail("missing '[' after '%f' in pattern");
                        }
                        let ep = self.class_end(p)?;
                        let previous = if s == 0 { 0 } else { self.src[s - 1] };
                        if !self.match_bracket_class(previous, p, ep - 1)
                            && self.match_bracket_class(self.src_at(s), p, ep - 1)
                        {
                            p = ep;
                            continue;
                        }
                        break None;
                    }
                    digit @ b'0'..=b'9' => match self.match_back_reference(s, digit)? {
                        Some(after) => {
                            (s, p) = (after, p + 2);
                            continue;
                        }
                        None => break None,
                    },
                    _ => {}
                },
                _ => {}
            }
            // A single-character class with an optional quantifier.
            let ep = self.class_end(p)?;
            let suffix = self.pat_at(ep);
            if !self.single_match(s, p, ep) {
                if matches!(suffix, b'*' | b'?' | b'-') {
                    // Matches empty.
                    p = ep + 1;
                    continue;
                }
                break None;
            }
            match suffix {
                b'?' => {
                    if let Some(found) = self.do_match(s + 1, ep + 1)? {
                        break Some(found);
                    }
                    p = ep + 1;
                }
                b'+' => break self.max_expand(s + 1, p, ep)?,
                b'*' => break self.max_expand(s, p, ep)?,
                b'-' => break self.min_expand(s, p, ep)?,
                _ => (s, p) = (s + 1, ep),
            }
        };
        self.depth += 1;
        Ok(result)
    }

    /// Where the single-character class at `p` ends (`classend`).
    #[inline]
    fn class_end(&self, p: usize) -> Step<usize> {
        let end = self.pat.len();
        let mut p = p + 1;
        match self.pat[p - 1] {
            b'%' => {
                if p == end {
                    return fail("malformed pattern (ends with '%')");
                }
                Ok(p + 1)
            }
            b'[' => {
                if self.pat_at(p) == b'^' {
                    p += 1;
                }
                // Look for the `]`; the first character is in the set even if it is one.
                loop {
                    if p == end {
                        return fail("malformed pattern (missing ']')");
                    }
                    let c = self.pat[p];
                    p += 1;
                    if c == b'%' && p < end {
                        p += 1; // skips escapes (`%]`)
                    }
                    if self.pat_at(p) == b']' {
                        break;
                    }
                }
                Ok(p + 1)
            }
            _ => Ok(p),
        }
    }

    /// Whether the subject's character at `s` is in the class `p..ep` (`singlematch`).
    #[inline]
    fn single_match(&self, s: usize, p: usize, ep: usize) -> bool {
        let Some(&c) = self.src.get(s) else {
            return false;
        };
        match self.pat[p] {
            b'.' => true,
            b'%' => match_class(c, self.pat_at(p + 1)),
            b'[' => self.match_bracket_class(c, p, ep - 1),
            literal => literal == c,
        }
    }

    /// Whether `c` is in the set `[...]` from `p` (its `[`) to `ec` (its `]`)
    /// (`matchbracketclass`).
    fn match_bracket_class(&self, c: u8, mut p: usize, ec: usize) -> bool {
        let mut found = true;
        if self.pat_at(p + 1) == b'^' {
            found = false;
            p += 1;
        }
        loop {
            p += 1;
            if p >= ec {
                return !found;
            }
            if self.pat[p] == b'%' {
                p += 1;
                if match_class(c, self.pat_at(p)) {
                    return found;
                }
            } else if self.pat_at(p + 1) == b'-' && p + 2 < ec {
                p += 2;
                if self.pat[p - 2] <= c && c <= self.pat[p] {
                    return found;
                }
            } else if self.pat[p] == c {
                return found;
            }
        }
    }

    /// `%bxy` with `x` and `y` at `p` (`matchbalance`). Each byte scanned is a step.
    fn match_balance(&mut self, s: usize, p: usize) -> Step<Option<usize>> {
        if p + 1 >= self.pat.len() {
            return fail("malformed pattern (missing arguments to '%b')");
        }
        if self.src_at(s) != self.pat[p] {
            return Ok(None);
        }
        let (open, close) = (self.pat[p], self.pat[p + 1]);
        let mut depth = 1;
        for (i, &c) in self.src.iter().enumerate().skip(s + 1) {
            if c == close {
                depth -= 1;
                if depth == 0 {
                    self.meter.add((i - s) as u64)?;
                    return Ok(Some(i + 1));
                }
            } else if c == open {
                depth += 1;
            }
        }
        self.meter.add((self.src.len() - s) as u64)?;
        Ok(None)
    }

    /// The longest run of the class `p..ep` from `s` that lets the rest match (`max_expand`).
    fn max_expand(&mut self, s: usize, p: usize, ep: usize) -> Step<Option<usize>> {
        let mut count = 0;
        while self.single_match(s + count, p, ep) {
            count += 1;
        }
        self.meter.add(count as u64)?;
        // Backs off one repetition at a time.
        loop {
            if let Some(found) = self.do_match(s + count, ep + 1)? {
                return Ok(Some(found));
            }
            if count == 0 {
                return Ok(None);
            }
            count -= 1;
        }
    }

    /// The shortest run of the class `p..ep` from `s` that lets the rest match (`min_expand`).
    fn min_expand(&mut self, mut s: usize, p: usize, ep: usize) -> Step<Option<usize>> {
        loop {
            if let Some(found) = self.do_match(s, ep + 1)? {
                return Ok(Some(found));
            }
            if !self.single_match(s, p, ep) {
                return Ok(None);
            }
            s += 1;
        }
    }

    /// Opens a capture at `s` and matches the rest (`start_capture`).
    fn start_capture(&mut self, s: usize, p: usize, what: CaptureLen) -> Step<Option<usize>> {
        if self.level >= MAX_CAPTURES {
            return fail("too many captures");
        }
        self.captures[self.level] = Capture {
            start: s,
            len: what,
        };
        self.level += 1;
        let found = self.do_match(s, p)?;
        if found.is_none() {
            self.level -= 1; // undoes the capture
        }
        Ok(found)
    }

    /// Closes the innermost open capture at `s` and matches the rest (`end_capture`).
    fn end_capture(&mut self, s: usize, p: usize) -> Step<Option<usize>> {
        let Some(l) = (0..self.level)
            .rev()
            .find(|&l| self.captures[l].len == CaptureLen::Unfinished)
        else {
            return fail("invalid pattern capture");
        };
        self.captures[l].len = CaptureLen::Closed(s - self.captures[l].start);
        let found = self.do_match(s, p)?;
        if found.is_none() {
            self.captures[l].len = CaptureLen::Unfinished; // undoes the closing
        }
        Ok(found)
    }

    /// `%1`-`%9` (`match_capture`): the text of a closed capture again. A step per block
    /// compared (see [`compare`]).
    fn match_back_reference(&mut self, s: usize, digit: u8) -> Step<Option<usize>> {
        let index = usize::from(digit).wrapping_sub(usize::from(b'1'));
        let capture = match self.captures.get(index) {
            Some(capture) if index < self.level && capture.len != CaptureLen::Unfinished => {
                *capture
            }
            _ => {
                return Err(script_error(format!(
                    "invalid capture index %{} in pattern",
                    i32::from(digit) - i32::from(b'0')
                ))
                .into());
            }
        };
        // A position capture has no text: it never matches (C compares a huge length).
        let CaptureLen::Closed(len) = capture.len else {
            return Ok(None);
        };
        if self.src.len() - s < len {
            return Ok(None);
        }
        let text = &self.src[capture.start..capture.start + len];
        let (equal, blocks) = compare(&self.src[s..s + len], text);
        self.meter.add(blocks)?;
        Ok(equal.then_some(s + len))
    }

    /// Capture `i`, or the whole match `whole` when there are none (`get_onecapture`).
    fn capture(&self, i: usize, whole: Option<(usize, usize)>) -> mlua::Result<Captured> {
        if i >= self.level {
            return match whole {
                Some((start, end)) if i == 0 => Ok(Captured::Text(start, end)),
                _ => Err(script_error(format!(
                    "invalid capture index %{} in replacement string",
                    i + 1
                ))),
            };
        }
        let capture = self.captures[i];
        match capture.len {
            CaptureLen::Unfinished => Err(script_error("unfinished capture")),
            CaptureLen::Position => Ok(Captured::Position(capture.start + 1)),
            CaptureLen::Closed(len) => Ok(Captured::Text(capture.start, capture.start + len)),
        }
    }

    /// Capture `i` as a Lua value (`push_onecapture`).
    fn capture_value(
        &mut self,
        lua: &Lua,
        i: usize,
        whole: Option<(usize, usize)>,
    ) -> mlua::Result<Value> {
        Ok(match self.capture(i, whole)? {
            Captured::Text(start, end) => {
                self.meter.copied(end - start)?;
                Value::String(lua.create_string(&self.src[start..end])?)
            }
            Captured::Position(position) => Value::Integer(position as Integer),
        })
    }

    /// All the captures, or the whole match `whole` if there are none and it is given
    /// (`push_captures`).
    fn push_captures(
        &mut self,
        lua: &Lua,
        whole: Option<(usize, usize)>,
        out: &mut MultiValue,
    ) -> mlua::Result<()> {
        let count = if self.level == 0 && whole.is_some() {
            1
        } else {
            self.level
        };
        for i in 0..count {
            out.push_back(self.capture_value(lua, i, whole)?);
        }
        Ok(())
    }

    /// Adds the replacement of the match `whole` to `output` (`add_value`): whether it changed
    /// the subject (a function or table giving nil or false keeps the match).
    fn add_value(
        &mut self,
        lua: &Lua,
        output: &mut Output,
        whole: (usize, usize),
        replacement: &Replacement,
        text: &[u8],
    ) -> mlua::Result<bool> {
        let value = match replacement {
            Replacement::Text(_) => {
                self.add_text(output, whole, text)?;
                return Ok(true);
            }
            Replacement::Function(function) => {
                let mut captures = MultiValue::new();
                self.push_captures(lua, Some(whole), &mut captures)?;
                function.call::<Value>(captures)?
            }
            Replacement::Table(table) => {
                table.get::<Value>(self.capture_value(lua, 0, Some(whole))?)?
            }
        };
        let src = self.src;
        match value {
            Value::Nil | Value::Boolean(false) => {
                output.push(&src[whole.0..whole.1], &mut self.meter)?;
                Ok(false)
            }
            Value::String(text) => {
                output.push(&text.as_bytes(), &mut self.meter)?;
                Ok(true)
            }
            number @ (Value::Integer(_) | Value::Number(_)) => {
                if let Some(text) = lua.coerce_string(number)? {
                    output.push(&text.as_bytes(), &mut self.meter)?;
                }
                Ok(true)
            }
            other => Err(script_error(format!(
                "invalid replacement value (a {})",
                lua_type_name(&other)
            ))),
        }
    }

    /// Adds a replacement string, with its `%` escapes, for the match `whole` (`add_s`).
    fn add_text(
        &mut self,
        output: &mut Output,
        whole: (usize, usize),
        text: &[u8],
    ) -> mlua::Result<()> {
        let src = self.src;
        let mut rest = text;
        while let Some(escape) = rest.iter().position(|&c| c == b'%') {
            output.push(&rest[..escape], &mut self.meter)?;
            match rest.get(escape + 1).copied().unwrap_or(0) {
                b'%' => output.push(b"%", &mut self.meter)?,
                b'0' => output.push(&src[whole.0..whole.1], &mut self.meter)?,
                digit @ b'1'..=b'9' => {
                    match self.capture(usize::from(digit - b'1'), Some(whole))? {
                        Captured::Text(start, end) => {
                            output.push(&src[start..end], &mut self.meter)?
                        }
                        Captured::Position(position) => {
                            output.push(position.to_string().as_bytes(), &mut self.meter)?
                        }
                    }
                }
                _ => {
                    return Err(script_error("invalid use of '%' in replacement string"));
                }
            }
            rest = &rest[escape + 2..];
        }
        output.push(rest, &mut self.meter)
    }
}

/// Whether `c` is in the class `%cl` (`match_class`), in the C locale.
#[inline]
fn match_class(c: u8, cl: u8) -> bool {
    let found = match cl.to_ascii_lowercase() {
        b'a' => c.is_ascii_alphabetic(),
        b'c' => c.is_ascii_control(),
        b'd' => c.is_ascii_digit(),
        b'g' => c.is_ascii_graphic(),
        b'l' => c.is_ascii_lowercase(),
        b'p' => c.is_ascii_punctuation(),
        // C's `isspace`, which (unlike `is_ascii_whitespace`) has the vertical tab.
        b's' => matches!(c, b' ' | b'\t'..=b'\r'),
        b'u' => c.is_ascii_uppercase(),
        b'w' => c.is_ascii_alphanumeric(),
        b'x' => c.is_ascii_hexdigit(),
        b'z' => c == 0, // deprecated, still in 5.4
        _ => return cl == c,
    };
    // Upper-case classes are complements.
    if cl.is_ascii_lowercase() {
        found
    } else {
        !found
    }
}

/// `gsub`'s result, built in Rust and moved into Lua strings as it grows.
struct Output<'l> {
    lua: &'l Lua,
    buf: Vec<u8>,
    /// Full pieces, already in Lua's memory.
    pieces: Vec<LuaString>,
}

impl<'l> Output<'l> {
    fn new(lua: &'l Lua) -> Self {
        Output {
            lua,
            buf: Vec::new(),
            pieces: Vec::new(),
        }
    }

    fn push(&mut self, bytes: &[u8], meter: &mut Meter) -> mlua::Result<()> {
        meter.copied(bytes.len())?;
        self.buf.extend_from_slice(bytes);
        if self.buf.len() >= OUTPUT_PIECE {
            self.pieces.push(self.lua.create_string(&self.buf)?);
            self.buf.clear();
        }
        Ok(())
    }

    fn finish(mut self, meter: &mut Meter) -> mlua::Result<LuaString> {
        if self.pieces.is_empty() {
            return self.lua.create_string(&self.buf);
        }
        let len = self
            .pieces
            .iter()
            .map(|p| p.as_bytes().len())
            .sum::<usize>()
            + self.buf.len();
        meter.copied(len)?;
        let mut all = Vec::with_capacity(len);
        for piece in self.pieces.drain(..) {
            all.extend_from_slice(&piece.as_bytes());
        }
        all.extend_from_slice(&self.buf);
        self.lua.create_string(&all)
    }
}

/// A 1-based start position in a `len`-byte string (`posrelatI`): negative counts back from
/// the end, and anything before the start is 1.
fn start_position(pos: Integer, len: usize) -> usize {
    if pos > 0 {
        pos as usize
    } else if pos == 0 || pos < -(len as Integer) {
        1
    } else {
        (len as Integer + pos + 1) as usize
    }
}

/// Lua's truthiness of an optional argument.
fn truthy(value: Option<&Value>) -> bool {
    !matches!(value, None | Some(Value::Nil | Value::Boolean(false)))
}

/// Argument `n` as a string, numbers converted as Lua does (`luaL_checklstring`).
fn check_string(
    lua: &Lua,
    value: Option<Value>,
    n: usize,
    function: &str,
) -> mlua::Result<LuaString> {
    match value {
        Some(Value::String(s)) => Ok(s),
        Some(number @ (Value::Integer(_) | Value::Number(_))) => lua
            .coerce_string(number.clone())?
            .ok_or_else(|| type_error(lua, Some(&number), n, function, "string")),
        other => Err(type_error(lua, other.as_ref(), n, function, "string")),
    }
}

/// Optional integer argument `n` (`luaL_optinteger`): floats with an integer value and numeric
/// strings are accepted.
fn opt_integer(
    lua: &Lua,
    value: Option<Value>,
    n: usize,
    function: &str,
    default: Integer,
) -> mlua::Result<Integer> {
    match value {
        None | Some(Value::Nil) => Ok(default),
        Some(Value::Integer(i)) => Ok(i),
        Some(value) => match lua.coerce_integer(value.clone())? {
            Some(i) => Ok(i),
            None if lua.coerce_number(value.clone())?.is_some() => Err(argument_error(
                lua,
                n,
                function,
                "number has no integer representation",
            )),
            None => Err(type_error(lua, Some(&value), n, function, "number")),
        },
    }
}

/// `luaL_typeerror`: "`expected` expected, got ..." (`None` is a missing argument).
fn type_error(
    lua: &Lua,
    value: Option<&Value>,
    n: usize,
    function: &str,
    expected: &str,
) -> mlua::Error {
    let got = match value {
        None => "no value".to_owned(),
        Some(Value::LightUserData(_)) => "light userdata".to_owned(),
        Some(Value::Table(table)) => match table.metatable().map(|m| m.raw_get("__name")) {
            Some(Ok(Value::String(name))) => name.to_string_lossy(),
            _ => "table".to_owned(),
        },
        Some(Value::UserData(userdata)) => userdata
            .type_name()
            .map_or_else(|_| "userdata".to_owned(), |name| name.to_string_lossy()),
        Some(other) => lua_type_name(other).to_owned(),
    };
    argument_error(lua, n, function, &format!("{expected} expected, got {got}"))
}

/// `luaL_argerror`: names the function as Lua does, from how it was called (`s:find(...)`
/// counts from the argument after `self`).
fn argument_error(lua: &Lua, n: usize, function: &str, message: &str) -> mlua::Error {
    let (name, what) = lua
        .inspect_stack(0, |frame| {
            let names = frame.names();
            (names.name.map(|name| name.into_owned()), names.name_what)
        })
        .unwrap_or_default();
    let mut n = n;
    if what == Some("method") {
        n -= 1;
        if n == 0 {
            return script_error(format!(
                "calling '{}' on bad self ({message})",
                name.as_deref().unwrap_or(function)
            ));
        }
    }
    // Called from C (`pcall(string.find)`): Lua names the function by where it is loaded.
    let name = name.unwrap_or_else(|| format!("string.{function}"));
    script_error(format!("bad argument #{n} to '{name}' ({message})"))
}

/// `luaL_typename`: the name of a value's Lua type.
fn lua_type_name(value: &Value) -> &'static str {
    match value {
        Value::LightUserData(_) | Value::UserData(_) | Value::Error(_) => "userdata",
        Value::Integer(_) | Value::Number(_) => "number",
        other => other.type_name(),
    }
}

#[cfg(test)]
mod tests {
    #[cfg(not(feature = "luau"))]
    #[test]
    fn runaway_patterns_are_stopped_by_the_budget() {
        use std::time::{Duration, Instant};

        use super::install;
        use crate::vm::budget::{Budget, BudgetWatchdog};

        let lua = mlua::Lua::new();
        // As the runtime's sandbox does: LuaJIT's compiled loops would never reach the hook.
        lua.load("if jit then jit.off() end").exec().unwrap();
        install(&lua).unwrap();
        let budget = Budget::install(&lua, 1_000_000, 0, BudgetWatchdog::Auto).unwrap();
        let run = |code: &str| {
            let started = Instant::now();
            let result = budget.run(|| lua.load(code).exec());
            (result, started.elapsed())
        };
        let runaways = [
            r#"string.find(("a"):rep(100000), ".-.-.-.-b")"#,
            r#"local big = ("a"):rep(100000)
               while true do pcall(string.find, big, ".-.-.-b") end"#,
            r#"local big = ("a"):rep(100000)
               while true do pcall(big.match, big, "(a*)%1b") end"#,
            r#"local big = ("a"):rep(100000)
               while true do pcall(string.find, big, ("a"):rep(5000) .. "b", 1, true) end"#,
            r#"local big = ("("):rep(100000)
               while true do pcall(string.gsub, big, "%b()", "") end"#,
            r#"local big = ("a"):rep(100000)
               while true do pcall(string.gsub, big, "", big) end"#,
            r#"for _ in (("a"):rep(100000)):gmatch(".-.-.-b") do end"#,
        ];
        for code in runaways {
            let (result, took) = run(code);
            let err = result.expect_err(code).to_string();
            assert!(err.contains("instruction budget exceeded"), "{code}: {err}");
            assert!(took < Duration::from_secs(5), "{code}: took {took:?}");
        }

        // Matching in budget still works, and is charged.
        let (result, _) = run(r#"local s = ("hello world "):rep(1000)
               local n = select(2, s:gsub("%w+", "%0"))
               assert(n == 2000 and s:find("world", 1, true) == 7)
               assert(s:match("(%w+) (%w+)$") == nil and s:match("(%w+) $") == "world")"#);
        result.unwrap();
        let (result, _) = run(r#"local s = ("hello world "):rep(1000)
               for i = 1, 100 do s:gsub("%w+", "%0") end"#);
        assert!(
            result.is_err(),
            "100 gsubs of 12000 bytes are past 1,000,000 steps"
        );
    }

    /// Our functions against the vendored Lua 5.4's own (LuaJIT's differ from 5.4's).
    #[cfg(feature = "lua54")]
    mod differential {
        use mlua::{Function, Lua, LuaString, Table};

        use super::super::install;

        const NAMES: [&str; 4] = ["find", "match", "gmatch", "gsub"];

        /// Runs a case's code and describes what it returned, or its error.
        const RUNNER: &str = r#"
            local function describe(v)
                if type(v) == "string" then return string.format("%q", v) end
                if type(v) ~= "table" then return type(v) .. " " .. tostring(v) end
                local parts = {}
                for i = 1, v.n or #v do parts[i] = describe(v[i]) end
                return "{" .. table.concat(parts, ", ") .. "}"
            end
            return function(code)
                local chunk = assert(load(code, "=case"))
                local results = table.pack(pcall(chunk))
                if not results[1] then return "error: " .. tostring(results[2]) end
                local parts = {}
                for i = 2, results.n do parts[#parts + 1] = describe(results[i]) end
                return table.concat(parts, ", ")
            end
        "#;

        /// A Lua state with both Lua's C functions and ours, to run the same code with each.
        struct Differential {
            string: Table,
            c: [Function; 4],
            rust: [Function; 4],
            runner: Function,
            _lua: Lua,
        }

        impl Differential {
            fn new() -> Self {
                let lua = Lua::new();
                let string: Table = lua.globals().get("string").unwrap();
                let c = NAMES.map(|name| string.get::<Function>(name).unwrap());
                install(&lua).unwrap();
                let rust = NAMES.map(|name| string.get::<Function>(name).unwrap());
                assert!(c[0] != rust[0], "installed");
                let runner = lua.load(RUNNER).eval().unwrap();
                Differential {
                    string,
                    c,
                    rust,
                    runner,
                    _lua: lua,
                }
            }

            fn run(&self, code: &str, rust: bool) -> String {
                let functions = if rust { &self.rust } else { &self.c };
                for (name, function) in NAMES.iter().zip(functions) {
                    self.string.set(*name, function.clone()).unwrap();
                }
                // Messages may quote bytes that are not UTF-8.
                let described: LuaString = self.runner.call(code).unwrap();
                described.as_bytes().escape_ascii().to_string()
            }

            /// Runs `code` with C's functions and ours: the same results, or both fail and our
            /// message has C's (without its position).
            fn compare(&self, code: &str) {
                let c = self.run(code, false);
                let rust = self.run(code, true);
                match c.strip_prefix("error: ") {
                    Some(message) => {
                        let message = without_position(message);
                        assert!(
                            rust.starts_with("error: ") && rust.contains(message),
                            "{code}\n   C: {c}\nRust: {rust}"
                        );
                    }
                    None => assert_eq!(c, rust, "{code}"),
                }
            }
        }

        /// A message without the `case:1: ` luaL_error puts before it.
        fn without_position(message: &str) -> &str {
            message
                .strip_prefix("case:")
                .and_then(|rest| rest.split_once(": "))
                .map_or(message, |(_, text)| text)
        }

        /// `find(...)`, `match(...)`, `gsub(...)` call `string.`; `gmatch(...)` collects what the
        /// iterator gives; anything else is code as it is.
        fn code(case: &str) -> String {
            if case.starts_with("gmatch(") {
                format!(
                    "local it, out = string.{case}, {{}}
                     for i = 1, 200 do
                         local r = table.pack(it())
                         if r.n == 0 then break end
                         out[i] = r
                     end
                     return out"
                )
            } else if ["find(", "match(", "gsub("]
                .iter()
                .any(|f| case.starts_with(f))
            {
                format!("return string.{case}")
            } else {
                case.to_owned()
            }
        }

        const CASES: &[&str] = &[
            // find: plain search, init, anchors
            r#"find("hello world", "o")"#,
            r#"find("hello world", "o", 6)"#,
            r#"find("hello world", "o", -3)"#,
            r#"find("hello world", "o", -100)"#,
            r#"find("hello world", "o", 0)"#,
            r#"find("hello", "", 10)"#,
            r#"find("hello", "", 6)"#,
            r#"find("hello", "", 7)"#,
            r#"find("hello", "", -10)"#,
            r#"find("", "")"#,
            r#"find("", "^$")"#,
            r#"find("a.b", ".", 1, true)"#,
            r#"find("a+b", "+", 1, true)"#,
            r#"find("a+b", "a+b")"#,
            r#"find("a+b", "a+b", 1, "yes")"#,
            r#"find("a+b", "a%+b", 1, false)"#,
            r#"find("hello", "lo", 1, nil)"#,
            r#"find("hello", "xyz")"#,
            r#"find("aaab", "aab")"#,
            r#"find(("abcdefgh"):rep(10) .. "xyz", "xyz")"#,
            r#"find(("abcdefgh"):rep(10) .. "xyz", "hab", 30)"#,
            r#"find(("ab"):rep(20), "ba", 17, true)"#,
            r#"find(("\255"):rep(30) .. "\0\1", "\0")"#,
            r#"find(("\128"):rep(30) .. "\127", "\127")"#,
            r#"find(("a"):rep(40), "aab")"#,
            r#"find(("a"):rep(40) .. "b", ("a"):rep(20) .. "b")"#,
            r#"find("a\0b\0c", "\0c")"#,
            r#"find("a\0b", "%z")"#,
            r#"find("a\0\0b", "%z+")"#,
            r#"find("abc", "^b")"#,
            r#"find("abc", "^a")"#,
            r#"find("abc", "^b", 2)"#,
            r#"find("abc", "c$")"#,
            r#"find("abc", "b$")"#,
            r#"find("a$c", "$c")"#,
            r#"find("a^c", "a^")"#,
            // captures and classes
            r#"find("hello world", "l+")"#,
            r#"find("hello world", "(l+)(o)")"#,
            r#"find("hello", "()ll()")"#,
            r#"find("THE (quick) fox", "%((%a+)%)")"#,
            r#"find("x = 10, y = 20", "(%a+)%s*=%s*(%d+)", 5)"#,
            r#"find("Hello World", "%u%l+", 2)"#,
            r#"find("Hello, World!", "%p")"#,
            r#"find("Hello, World!", "%P+")"#,
            r#"find("a\tb\vc\nd", "%s+")"#,
            r#"gsub("a\tb\vc\nd\fe\rf g", "%s", "_")"#,
            r#"gsub("a\tb\vc\nd\fe\rf g", "%S", "_")"#,
            r#"find("a\tb\nc", "%S+", 2)"#,
            r#"find("tab\127x\1", "%c")"#,
            r#"find("tab\127x\1", "%C+")"#,
            r#"find("0x1Fg", "%x+", 3)"#,
            r#"find("0x1Fg", "%X")"#,
            r#"find("  ~!  ", "%g+")"#,
            r#"find("abc123", "%D+")"#,
            r#"find("abc123", "%A+")"#,
            r#"find("aBc", "%L")"#,
            r#"find("aBc", "%U+")"#,
            r#"find("x1_y2 z", "[%w_]+")"#,
            r#"find("x1_y2 z", "%W")"#,
            r#"find("abc]def", "[]]")"#,
            r#"find("abc]def", "[^]a-c]+")"#,
            r#"find("a-b", "[a-]+")"#,
            r#"find("b-c", "[%a-]+")"#,
            r#"find("a^b", "[%^]")"#,
            r#"find("a^b", "[b^]+")"#,
            r#"find("hello", "[^aeiou]+", 2)"#,
            r#"find("caf\195\169 ok", "[\128-\255]+")"#,
            r#"find("x%y", "[%%]")"#,
            r#"find("a.b", "%.")"#,
            r#"find("a]b", "%]")"#,
            r#"find("2024-01-15", "(%d+)-(%d+)-(%d+)")"#,
            r#"find("ac", "ab?c")"#,
            r#"find("abbc", "ab?c")"#,
            r#"find("aaab", "a-b")"#,
            r#"find("aaab", "a-")"#,
            r#"find("hello", "l*")"#,
            r#"find("hello", "x*")"#,
            r#"find("hello", ".-l")"#,
            r#"find("hello", ".*l")"#,
            // balance, frontier, back-references
            r#"find("f(a(b)c)d", "%b()")"#,
            r#"find("f(a(b)c", "%b()")"#,
            r#"find("THE (quick) [brown] {fox}", "%b[]")"#,
            r#"find("x'quoted'y", "%b''")"#,
            r#"find("THE", "%f[%a]%a+")"#,
            r#"find("hello world from lua", "%f[%w]%w+", 7)"#,
            r#"find("THE (quick) fox", "%f[%a]%a+%f[%A]", 5)"#,
            r#"find("abc", "%f[%z]")"#,
            r#"find("abc", "%f[^%w]")"#,
            r#"find("abcabc", "(abc)%1")"#,
            r#"find("xyzzy", "(z)%1")"#,
            r#"find("say 'hi' or \"yo\"", "([\"'])(.-)%1")"#,
            r#"find("aa", "()%1")"#,
            // numbers as strings, init conversions
            r#"find(12345, 3)"#,
            r#"find("a1.5b", 1.5)"#,
            r#"find("a1.5b", 1.5, 1, true)"#,
            r#"find("x1e+100", 1e100)"#,
            r#"find("hello", "l", "2")"#,
            r#"find("hello", "l", 2.0)"#,
            r#"find("hello", "l", math.mininteger)"#,
            r#"find("hello", "l", math.maxinteger)"#,
            // match
            r#"match("hello world", "o w")"#,
            r#"match("hello", "(h)(e)(l)(l)(o)")"#,
            r#"match("hello", "()")"#,
            r#"match("hello", "h()e()")"#,
            r#"match(" x", "^ (x)$")"#,
            r#"match("  trim me  ", "^%s*(.-)%s*$")"#,
            r#"match("key = value", "^(%w+)%s*=%s*(%w+)$")"#,
            r#"match("abc", ".-")"#,
            r#"match("abc", "b", -1)"#,
            r#"match("abc", "b", 4)"#,
            r#"match("abc", "", 4)"#,
            r#"match("abc", "", 5)"#,
            r#"match(("x"):rep(20) .. "y", ("(x)"):rep(20))"#,
            // gmatch
            r#"gmatch("hello world from Lua", "%a+")"#,
            r#"gmatch("k1=v1, k2=v2", "(%w+)=(%w+)")"#,
            r#"gmatch("abc", "")"#,
            r#"gmatch("abc", "x*")"#,
            r#"gmatch("hello", "l*")"#,
            r#"gmatch("hello world", "%a+", 3)"#,
            r#"gmatch("hello world", "%a+", -5)"#,
            r#"gmatch("hello world", "%a+", -50)"#,
            r#"gmatch("^a^a", "^a")"#,
            r#"gmatch("abc", "()")"#,
            r#"gmatch("abc", "()(.)")"#,
            r#"gmatch("abc", ".", 10)"#,
            r#"gmatch("abc", ".", 4)"#,
            r#"gmatch("a,b,,c", "([^,]*)")"#,
            r#"gmatch("f(a)(b(c))", "%b()")"#,
            r#"gmatch("THE (quick) fox", "%f[%a]%a+")"#,
            // gsub: string replacement
            r#"gsub("hello world", "o", "0")"#,
            r#"gsub("hello world", "o", "0", 1)"#,
            r#"gsub("hello world", "o", "0", 0)"#,
            r#"gsub("hello world", "o", "0", -1)"#,
            r#"gsub("hello world", "o", "0", 2.0)"#,
            r#"gsub("hello world", "(o)", "[%1]")"#,
            r#"gsub("hello world", "%w+", "%0 %0")"#,
            r#"gsub("hello world", "(%w+) (%w+)", "%2 %1")"#,
            r#"gsub("hello", "", "-")"#,
            r#"gsub("abc", "x*", "-")"#,
            r#"gsub("hello", "l*", "-")"#,
            r#"gsub("abc", "%w", "%%")"#,
            r#"gsub("abc", "^a", "x")"#,
            r#"gsub("aaa", "^a", "x")"#,
            r#"gsub("aaa", "^", "x")"#,
            r#"gsub("abc", "$", "!")"#,
            r#"gsub("hello", "l", 5)"#,
            r#"gsub("hello", "l", 1.5)"#,
            r#"gsub("hello", "()", "%1")"#,
            r#"gsub("hello", "()l", "%1")"#,
            r#"gsub("abc", "b", "%1")"#,
            r#"gsub("abc", "b", "x%0x")"#,
            r#"gsub("abc", "", "")"#,
            r#"gsub("", "", "x")"#,
            r#"gsub("", "x", "y")"#,
            r#"gsub("a\0b", "%z", "\0\0")"#,
            r#"gsub(12.5, "%.", ",")"#,
            r#"gsub(12, "x", "y")"#,
            r#"gsub(("ab"):rep(50000), "a", "xyz")"#,
            r#"gsub(("ab"):rep(50000), "b", {b = ("c"):rep(3)})"#,
            r#"gmatch(1234, "%d")"#,
            // gsub: table and function replacement
            r#"gsub("hello world", "%w+", {hello = "HI"})"#,
            r#"gsub("hello world", "(%w+)", setmetatable({}, {__index = function(_, k) return k:upper() end}))"#,
            r#"gsub("hello", ".", {h = 1.5, e = 2, l = false})"#,
            r#"gsub("hello", "()", {[1] = "<", [6] = ">"})"#,
            r#"gsub("hello world", "%w+", function(w) return #w end)"#,
            r#"gsub("hello world", "%w+", function(w) return nil end)"#,
            r#"gsub("hello world", "%w+", function(w) return false end)"#,
            r#"gsub("hello world", "(%w)(%w*)", function(a, b) return a:upper() .. b end)"#,
            r#"gsub("abc", "(b)()", function(a, b) return a .. b end)"#,
            r##"gsub("abc", "", function(...) return select("#", ...) end)"##,
            r#"gsub("a b", "%a", function(c) return (c:gsub(".", "%0%0")) end)"#,
            r#"gsub("hello world", "o", "0", 1.5)"#,
            // method syntax goes through the string metatable
            r#"return ("hello"):find("l")"#,
            r#"return ("hello"):match("(h)(.)")"#,
            r#"return ("hello"):gsub("l", "L")"#,
            r#"local t = {} for w in ("one two"):gmatch("%a+") do t[#t + 1] = w end return t"#,
            // pattern errors
            r#"find("a", "%")"#,
            r#"find("a", "a%")"#,
            r#"find("a", "[a")"#,
            r#"find("a", "[^")"#,
            r#"find("a", "[]")"#,
            r#"find("a", "[%")"#,
            r#"find("a", "%b")"#,
            r#"find("a", "%ba")"#,
            r#"find("a", "%f")"#,
            r#"find("a", "%fa")"#,
            r#"find("a", "%1")"#,
            r#"find("a", "%0")"#,
            r#"find("aa", "(a)%2")"#,
            r#"find("aa", "(a%1)")"#,
            r#"find("a", "a)")"#,
            r#"find("a", "(a")"#,
            r#"match("a", "(a")"#,
            r#"match("a", "(()")"#,
            r#"find("a", ("()"):rep(33))"#,
            r#"find(("a"):rep(300), ("a?"):rep(300))"#,
            r#"gmatch("x", "%")"#,
            r#"local it = string.gmatch("x", "%") pcall(it) return it()"#,
            r#"gsub("x", "%", "")"#,
            r#"gsub("x", "x", "%")"#,
            r#"gsub("x", "x", "%a")"#,
            r#"gsub("x", "x", "%2")"#,
            r#"gsub("x", "(x)", "%2")"#,
            r#"gsub("abc", ".", {a = 1, b = true})"#,
            r#"gsub("abc", ".", function() return {} end)"#,
            r#"gsub("abc", ".", function() return print end)"#,
            r#"gsub("abc", ".", function() error("oops") end)"#,
            // argument errors
            r#"find(nil, "x")"#,
            r#"find("x")"#,
            r#"find()"#,
            r#"find("x", {})"#,
            r#"find("x", setmetatable({}, {__name = "Thing"}))"#,
            r#"find("x", "x", "a")"#,
            r#"find("x", "x", 1.5)"#,
            r#"find("x", "x", "1.5")"#,
            r#"find("x", "x", 2^63)"#,
            r#"match(true, "x")"#,
            r#"match("x", "x", {})"#,
            r#"gmatch(nil, "x")"#,
            r#"gmatch("x", "x", "y")"#,
            r#"gsub("abc", "a")"#,
            r#"gsub("abc", "a", nil)"#,
            r#"gsub("abc", "a", true)"#,
            r#"gsub("abc", "a", "x", "y")"#,
            r#"gsub("abc", "a", true, "y")"#,
            r#"gsub("abc", "a", "x", 1.5)"#,
            r#"return ("x"):find({})"#,
            r#"return ("x"):gsub("x", true)"#,
        ];

        #[test]
        fn results_and_errors_are_lua_5_4s() {
            assert!(CASES.len() >= 80);
            let differential = Differential::new();
            for case in CASES {
                differential.compare(&code(case));
            }
        }

        /// A Lua string literal for any bytes.
        fn literal(bytes: &[u8]) -> String {
            let mut out = String::from("\"");
            for &c in bytes {
                match c {
                    b'"' | b'\\' => {
                        out.push('\\');
                        out.push(char::from(c));
                    }
                    b' '..=b'~' => out.push(char::from(c)),
                    _ => out.push_str(&format!("\\{c:03}")),
                }
            }
            out.push('"');
            out
        }

        /// Random patterns, from pieces of every feature, on random subjects: the same as C's.
        #[test]
        fn random_patterns_match_as_in_lua_5_4() {
            const PIECES: &[&str] = &[
                "a", "b", ".", "%a", "%d", "%s", "%W", "%z", "%%", "[ab]", "[^a]", "[a-c]",
                "[%d)]", "[%a-]", "[]]", "[^]]", "(", ")", "()", "(%a+)", "*", "+", "-", "?",
                "%b()", "%b", "%f[%w]", "%f[%W]", "%f", "%0", "%1", "%2", "^", "$", "x", "%", "[",
                "[a-",
            ];
            const REPLACEMENTS: &[&str] = &[
                "\"<%0>\"",
                "\"%1\"",
                "\"[%2]\"",
                "\"%%\"",
                "\"x%\"",
                "7",
                "{a = \"A\", [1] = \"one\", b = false}",
                "function(...) return select(\"#\", ...) .. table.concat({...}, \"|\") end",
                "function(c) if c == \"a\" then return nil end return c end",
            ];
            const SUBJECT: &[u8] = b"ab(c) 1xa\0\x0b\xe9";
            let differential = Differential::new();
            let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
            let mut next = |n: usize| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                (seed % n as u64) as usize
            };
            for _ in 0..5000 {
                let pattern: String = (0..1 + next(6))
                    .map(|_| PIECES[next(PIECES.len())])
                    .collect();
                let subject: Vec<u8> = (0..next(12))
                    .map(|_| SUBJECT[next(SUBJECT.len())])
                    .collect();
                let (s, p) = (literal(&subject), literal(pattern.as_bytes()));
                let init = [String::new(), format!(", {}", next(15) as i64 - 7)][next(2)].clone();
                differential.compare(&code(&format!("find({s}, {p}{init})")));
                differential.compare(&code(&format!("match({s}, {p}{init})")));
                differential.compare(&code(&format!("gmatch({s}, {p}{init})")));
                let replacement = REPLACEMENTS[next(REPLACEMENTS.len())];
                let count = [String::new(), format!(", {}", next(5) as i64 - 1)][next(2)].clone();
                differential.compare(&code(&format!("gsub({s}, {p}, {replacement}{count})")));
            }
        }
    }
}
