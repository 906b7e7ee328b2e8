"""The segment filter language: text in, a small tree out; never SQL.

    filter     := or
    or         := and ("or" and)*
    and        := unary ("and" unary)*
    unary      := "not" unary | "(" or ")" | condition
    condition  := "tag" ":" WORD
                | "attr" "." NAME ("=" | "!=" | "<" | ">" | "<=" | ">=" | "contains") value
                | "attr" "." NAME "exists"
                | "joined" ("=" | "<" | ">" | "<=" | ">=") DATE          (YYYY-MM-DD, UTC)
                | ("timezone" | "email" | "name") ("=" | "!=" | "~" | "contains") STRING
                | "clicked" "within" PERIOD                              (30d, 12h, 2w)
    value      := STRING | NUMBER | "true" | "false"

Words are case-insensitive; strings are in double quotes with \\" and \\\\ escapes; `~` matches
a pattern where `*` is any run of characters. For example:
    tag:vip and not tag:trial and attr.plan = "pro" and joined > 2026-01-01
        and clicked within 30d and timezone ~ "Europe/*"
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

from app.errors import InvalidInput

MAX_LENGTH = 2000
MAX_DEPTH = 20  # parentheses and `not`s: a filter is written by a person
MAX_CONDITIONS = 50

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<op><=|>=|!=|=|<|>|~|\(|\)|:|\.)
  | (?P<date>\d{4}-\d{2}-\d{2}(?![\w.-]))
  | (?P<period>\d{1,6}[hdw](?![\w.]))
  | (?P<number>-?\d{1,15}(?:\.\d{1,15})?(?![\w]))
  | (?P<word>[A-Za-z0-9_][A-Za-z0-9_+-]{0,63})
    """,
    re.VERBOSE,
)
_TAG = re.compile(r"[a-z0-9][a-z0-9_+-]{0,63}")
COMPARE = ("=", "!=", "<", ">", "<=", ">=")
TEXT_OPS = ("=", "!=", "~", "contains")


class FilterError(InvalidInput):
    """A filter that does not parse: the message names the position and what was expected."""

    code = "bad_filter"

    def __init__(self, position: int, expected: str, found: str) -> None:
        super().__init__(
            f"The filter does not read at position {position + 1}: expected {expected}, "
            f"found {found}."
        )
        self.position = position
        self.expected = expected


@dataclass(frozen=True)
class Token:
    """One token and where it starts (0-based)."""

    kind: str  # string, op, date, period, number, word, end
    text: str
    pos: int


# The tree ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tag:
    """The reader has this tag."""

    tag: str


@dataclass(frozen=True)
class Attr:
    """A comparison on one attribute; value None with op "exists"."""

    name: str
    op: str
    value: str | float | bool | None


@dataclass(frozen=True)
class Joined:
    """A comparison on the day the reader signed up (UTC)."""

    op: str
    day: date


@dataclass(frozen=True)
class Text:
    """A comparison on the reader's time zone, address or name."""

    field: str
    op: str
    value: str


@dataclass(frozen=True)
class ClickedWithin:
    """The reader clicked a link of any issue within this period."""

    period: timedelta


@dataclass(frozen=True)
class Not:
    """The opposite of a filter."""

    inner: Node


@dataclass(frozen=True)
class BoolOp:
    """All (and) or any (or) of several filters."""

    op: str
    items: tuple[Node, ...]


Node = Tag | Attr | Joined | Text | ClickedWithin | Not | BoolOp


def _describe(token: Token) -> str:
    if token.kind == "end":
        return "the end of the filter"
    if token.kind == "bad" and token.text == '"':
        return "a string without its closing quote"
    return repr(token.text)


def tokenize(source: str) -> list[Token]:
    """Split a filter into tokens, ending at the first character that starts none ("bad").

    The parser reports a bad character when it reaches it, so the message says what it
    expected there.
    """
    if len(source) > MAX_LENGTH:
        raise FilterError(MAX_LENGTH, f"a filter of at most {MAX_LENGTH} characters", "more")
    tokens: list[Token] = []
    pos = 0
    while pos < len(source):
        match = _TOKEN.match(source, pos)
        if match is None:
            tokens.append(Token("bad", source[pos], pos))
            return tokens
        kind = match.lastgroup or ""
        if kind != "space":
            tokens.append(Token(kind, match.group(), pos))
        pos = match.end()
    tokens.append(Token("end", "", len(source)))
    return tokens


class _Parser:
    def __init__(self, source: str) -> None:
        self.tokens = tokenize(source)
        self.i = 0
        self.depth = 0
        self.conditions = 0

    @property
    def token(self) -> Token:
        return self.tokens[self.i]

    def _word(self, *words: str) -> bool:
        tok = self.token
        return tok.kind == "word" and tok.text.lower() in words

    def _take(self) -> Token:
        tok = self.token
        self.i += 1
        return tok

    def _expect_op(self, *ops: str, expected: str) -> str:
        tok = self.token
        if tok.kind == "op" and tok.text in ops:
            return self._take().text
        if tok.kind == "word" and tok.text.lower() in ops:
            return self._take().text.lower()
        raise FilterError(tok.pos, expected, _describe(tok))

    def parse(self) -> Node:
        if self.token.kind == "end":
            raise FilterError(0, "a condition such as tag:vip", "an empty filter")
        node = self._or()
        if self.token.kind != "end":
            raise FilterError(self.token.pos, '"and", "or" or the end', _describe(self.token))
        return node

    def _or(self) -> Node:
        items = [self._and()]
        while self._word("or"):
            self._take()
            items.append(self._and())
        return items[0] if len(items) == 1 else BoolOp("or", tuple(items))

    def _and(self) -> Node:
        items = [self._unary()]
        while self._word("and"):
            self._take()
            items.append(self._unary())
        return items[0] if len(items) == 1 else BoolOp("and", tuple(items))

    def _unary(self) -> Node:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise FilterError(self.token.pos, f"at most {MAX_DEPTH} nested levels", "more")
        try:
            if self._word("not"):
                self._take()
                return Not(self._unary())
            tok = self.token
            if tok.kind == "op" and tok.text == "(":
                self._take()
                node = self._or()
                self._expect_op(")", expected='")"')
                return node
            return self._condition()
        finally:
            self.depth -= 1

    def _condition(self) -> Node:
        tok = self.token
        self.conditions += 1
        if self.conditions > MAX_CONDITIONS:
            raise FilterError(tok.pos, f"at most {MAX_CONDITIONS} conditions", "more")
        if tok.kind != "word":
            expected = "a condition (tag:, attr., joined, timezone, email, name, clicked)"
            raise FilterError(tok.pos, expected, _describe(tok))
        name = tok.text.lower()
        self._take()
        if name == "tag":
            self._expect_op(":", expected='":" after tag')
            return Tag(self._tag())
        if name == "attr":
            return self._attr()
        if name == "joined":
            op = self._expect_op(*COMPARE[:1], *COMPARE[2:], expected="=, <, >, <= or >=")
            day = self.token
            if day.kind != "date":
                raise FilterError(day.pos, "a date such as 2026-01-01", _describe(day))
            self._take()
            try:
                return Joined(op, date.fromisoformat(day.text))
            except ValueError:
                raise FilterError(day.pos, "a real calendar date", repr(day.text)) from None
        if name in ("timezone", "email", "name"):
            op = self._expect_op(*TEXT_OPS, expected='=, !=, ~ or "contains"')
            return Text(name, op, self._string())
        if name == "clicked":
            if not self._word("within"):
                raise FilterError(self.token.pos, '"within"', _describe(self.token))
            self._take()
            period = self.token
            if period.kind != "period":
                expected = "a period such as 30d, 12h or 2w"
                raise FilterError(period.pos, expected, _describe(period))
            self._take()
            amount, unit = int(period.text[:-1]), period.text[-1]
            hours = {"h": 1, "d": 24, "w": 24 * 7}[unit] * amount
            return ClickedWithin(timedelta(hours=hours))
        expected = "a condition (tag:, attr., joined, timezone, email, name, clicked)"
        raise FilterError(tok.pos, expected, repr(tok.text))

    def _tag(self) -> str:
        tok = self.token
        text = tok.text.lower() if tok.kind in ("word", "number", "period") else ""
        if tok.kind == "string":
            text = _unquote(tok.text).strip().lower()
        if not _TAG.fullmatch(text):
            raise FilterError(tok.pos, "a tag (letters, digits, _ + -)", _describe(tok))
        self._take()
        return text

    def _attr(self) -> Node:
        self._expect_op(".", expected='"." after attr')
        tok = self.token
        if tok.kind != "word":
            raise FilterError(tok.pos, "an attribute name", _describe(tok))
        name = self._take().text
        if self._word("exists"):
            self._take()
            return Attr(name, "exists", None)
        expected = '=, !=, <, >, <=, >=, "contains" or "exists"'
        op = self._expect_op(*COMPARE, "contains", expected=expected)
        return Attr(name, op, self._value())

    def _value(self) -> str | float | bool:
        tok = self.token
        if tok.kind == "string":
            self._take()
            return _unquote(tok.text)
        if tok.kind == "number":
            self._take()
            return float(tok.text)
        if tok.kind == "word" and tok.text.lower() in ("true", "false"):
            self._take()
            return tok.text.lower() == "true"
        raise FilterError(tok.pos, 'a value ("text", a number, true or false)', _describe(tok))

    def _string(self) -> str:
        tok = self.token
        if tok.kind != "string":
            raise FilterError(tok.pos, 'a quoted string such as "Europe/*"', _describe(tok))
        self._take()
        return _unquote(tok.text)


def _unquote(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text[1:-1])


def parse_filter(source: str) -> Node:
    """Parse a filter into its tree; FilterError (a 422) names the position and the expectation."""
    if not isinstance(source, str):
        raise FilterError(0, "a filter as text", "something else")
    return _Parser(source).parse()
