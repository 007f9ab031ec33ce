"""Safe boolean expressions over named columns, for action rules' eligibility (no ``eval``).

An expression is parsed with Python's own parser (:func:`ast.parse`, ``mode="eval"``) and
accepted only if every node belongs to a small whitelisted grammar; it is then compiled to
plain dataclasses and evaluated column-wise with numpy, never by Python's ``eval``. The
stdlib parser is well kept and has no tokenizer of ours to get wrong; the whitelist keeps out
calls, attributes, subscripts, arithmetic, lambdas and comprehensions, so nothing can run but
comparisons. A library such as ``simpleeval`` evaluates one row at a time in Python and
accepts more than rules need; a vectorised evaluator over whole columns is what scoring a
million customers needs.

Grammar::

    expr      := expr "or" expr | expr "and" expr | "not" expr | "(" expr ")" | test
    test      := operand (op operand)+            # chained: a < b < c means a < b and b < c
               | operand ["not"] "in" list          # "support" in reason_families, band in ["high", "medium"]
               | operand "is" ["not"] None          # missing / not missing
               | name                               # a number or flag: true when non-zero
    op        := "==" | "!=" | "<" | "<=" | ">" | ">="
    operand   := name | number | "text" | true | false
    list      := "[" literal ("," literal)* "]"  (or parentheses)

Semantics: a comparison involving a missing value is false (so ``not (x > 1)`` is true for a
missing ``x``); text compares only with ``==``, ``!=`` and ``in``; ``"x" in name`` tests
membership when ``name`` holds a set of texts per row (the reason families of a customer).
"""

from __future__ import annotations

import ast
import operator
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import numpy as np
import pandas as pd

from churnlens.errors import InputError

#: Longest expression accepted (bounds the parser's work and recursion).
MAX_LENGTH = 2_000
#: Deepest nesting accepted.
MAX_DEPTH = 40

Kind = Literal["number", "text", "set"]
_COMPARE: dict[type, str] = {
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
}
_NUMPY_OPS = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_BOOLEAN_NAMES = {"true": True, "false": False, "True": True, "False": False}


# --------------------------------------------------------------------------- the compiled form


@dataclass(frozen=True)
class Name:
    """A column of the evaluated rows."""

    id: str


@dataclass(frozen=True)
class Literal_:
    """A number, a text or a flag."""

    value: float | str | bool


Operand = Name | Literal_


@dataclass(frozen=True)
class Compare:
    """``left op right``."""

    op: str
    left: Operand
    right: Operand


@dataclass(frozen=True)
class Member:
    """``operand in values`` (a literal list), or ``literal in name`` (a set per row); ``negate`` for ``not in``."""

    operand: Operand
    values: tuple[float | str | bool, ...] | Name
    negate: bool = False


@dataclass(frozen=True)
class Missing:
    """``operand is None`` (``negate``: ``is not None``)."""

    operand: Name
    negate: bool = False


@dataclass(frozen=True)
class Truthy:
    """A bare number or flag: true when present and non-zero."""

    operand: Name


@dataclass(frozen=True)
class Not:
    item: Node


@dataclass(frozen=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Node, ...]


Node = Compare | Member | Missing | Truthy | Not | And | Or


@dataclass(frozen=True)
class Expression:
    """A parsed eligibility expression: its text and its compiled tree."""

    text: str
    tree: Node

    @property
    def names(self) -> frozenset[str]:
        """Every column name the expression reads."""
        return frozenset(_names(self.tree))

    def evaluate(self, columns: Mapping[str, Any], n: int) -> np.ndarray:
        """Truth of the expression on each of ``n`` rows.

        Parameters
        ----------
        columns : mapping of name to array-like
            One value per row for every name of :attr:`names`: numbers (NaN = missing),
            flags, texts (None/NA = missing) or sets of texts.
        n : int
            Rows.

        Returns
        -------
        ndarray of bool

        Raises
        ------
        InputError
            A name with no column, or a comparison of a text with a number.
        """
        missing = sorted(self.names - set(columns))
        if missing:
            raise InputError(f"expression {self.text!r}: unknown name(s) {missing}")
        values = {name: _Column.of(name, columns[name], n) for name in self.names}
        try:
            out = _eval(self.tree, values, n)
        except _TypeClash as exc:
            raise InputError(f"expression {self.text!r}: {exc}") from None
        return np.asarray(out, dtype=bool)


# --------------------------------------------------------------------------- parsing


class _Refused(Exception):
    def __init__(self, node: ast.AST | None, what: str) -> None:
        self.node, self.what = node, what


def parse(text: str) -> Expression:
    """Parse an eligibility expression, refusing anything outside the grammar.

    Parameters
    ----------
    text : str

    Returns
    -------
    Expression

    Raises
    ------
    InputError
        Syntax errors and refused constructs, with the position and what is allowed.

    Examples
    --------
    >>> e = parse('band == "high" and value >= 100')
    >>> sorted(e.names)
    ['band', 'value']
    >>> e.evaluate({"band": ["high", "low"], "value": [150.0, 300.0]}, 2).tolist()
    [True, False]
    """
    return _parse_cached(text) if isinstance(text, str) else _parse_cached(_not_text(text))


def _not_text(text: Any) -> str:
    raise InputError(f"an eligibility expression must be text, got {type(text).__name__} {text!r}")


@lru_cache(maxsize=256)
def _parse_cached(text: str) -> Expression:
    source = text.strip()
    if not source:
        raise InputError("empty eligibility expression")
    if len(source) > MAX_LENGTH:
        raise InputError(f"eligibility expression longer than {MAX_LENGTH} characters ({len(source)})")
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        hint = " (use == to compare)" if re.search(r"(?<![=!<>])=(?!=)", source) else ""
        raise InputError(
            f"eligibility expression {source!r} is not valid: {exc.msg} at column {exc.offset}{hint}"
        ) from None
    except (RecursionError, MemoryError, ValueError):
        raise InputError(f"eligibility expression {source[:60]!r}... is too deeply nested") from None
    try:
        node = _node(tree.body, 0)
    except _Refused as refused:
        column = getattr(refused.node, "col_offset", None)
        where = f" at column {column + 1}" if column is not None else ""
        raise InputError(
            f"eligibility expression {source!r}: {refused.what}{where} is not allowed — rules may use "
            "comparisons (== != < <= > >=), and / or / not, in [...], is None, names, numbers and \"texts\""
        ) from None
    return Expression(source, node)


def _node(node: ast.AST, depth: int) -> Node:
    if depth > MAX_DEPTH:
        raise _Refused(node, f"nesting deeper than {MAX_DEPTH}")
    if isinstance(node, ast.BoolOp):
        items = tuple(_node(v, depth + 1) for v in node.values)
        return And(items) if isinstance(node.op, ast.And) else Or(items)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return Not(_node(node.operand, depth + 1))
    if isinstance(node, ast.Compare):
        return _compare(node)
    if isinstance(node, ast.Name) and node.id not in _BOOLEAN_NAMES:
        return Truthy(Name(node.id))
    if (isinstance(node, ast.Constant) and isinstance(node.value, bool)) or (
        isinstance(node, ast.Name) and node.id in _BOOLEAN_NAMES
    ):
        value = node.value if isinstance(node, ast.Constant) else _BOOLEAN_NAMES[node.id]
        return Compare("==", Literal_(True), Literal_(bool(value)))
    raise _Refused(node, _what(node))


def _what(node: ast.AST) -> str:
    names = {
        ast.Call: "a function call",
        ast.Attribute: "an attribute",
        ast.Subscript: "a subscript",
        ast.BinOp: "arithmetic",
        ast.Lambda: "a lambda",
        ast.IfExp: "a conditional expression",
        ast.NamedExpr: "an assignment",
        ast.JoinedStr: "an f-string",
        ast.ListComp: "a comprehension",
        ast.GeneratorExp: "a comprehension",
        ast.SetComp: "a comprehension",
        ast.DictComp: "a comprehension",
        ast.Dict: "a dict",
        ast.Starred: "unpacking",
        ast.Await: "await",
    }
    if isinstance(node, ast.Constant):
        return f"the bare constant {node.value!r}"
    return next((v for k, v in names.items() if isinstance(node, k)), f"{type(node).__name__}")


def _operand(node: ast.AST) -> Operand:
    if isinstance(node, ast.Name):
        if node.id in _BOOLEAN_NAMES:
            return Literal_(_BOOLEAN_NAMES[node.id])
        return Name(node.id)
    if isinstance(node, ast.Constant) and isinstance(node.value, bool | int | float | str):
        value = node.value
        return Literal_(value if isinstance(value, bool | str) else float(value))
    if (
        isinstance(node, ast.UnaryOp)
        and isinstance(node.op, ast.USub | ast.UAdd)
        and isinstance(node.operand, ast.Constant)
        and isinstance(node.operand.value, int | float)
        and not isinstance(node.operand.value, bool)
    ):
        sign = -1.0 if isinstance(node.op, ast.USub) else 1.0
        return Literal_(sign * float(node.operand.value))
    raise _Refused(node, _what(node) if not isinstance(node, ast.Constant) else f"the constant {node.value!r}")


def _literal_list(node: ast.AST) -> tuple[float | str | bool, ...]:
    if not isinstance(node, ast.List | ast.Tuple | ast.Set):
        raise _Refused(node, _what(node))
    if not node.elts:
        raise _Refused(node, "an empty list")
    values = []
    for element in node.elts:
        operand = _operand(element)
        if isinstance(operand, Name):
            raise _Refused(element, "a name inside a list (lists hold numbers or texts)")
        values.append(operand.value)
    return tuple(values)


def _compare(node: ast.Compare) -> Node:
    parts: list[Node] = []
    left_node = node.left
    for op, right_node in zip(node.ops, node.comparators, strict=True):
        if isinstance(op, ast.In | ast.NotIn):
            negate = isinstance(op, ast.NotIn)
            if isinstance(right_node, ast.Name) and right_node.id not in _BOOLEAN_NAMES:
                parts.append(Member(_operand(left_node), Name(right_node.id), negate))
            else:
                parts.append(Member(_operand(left_node), _literal_list(right_node), negate))
        elif isinstance(op, ast.Is | ast.IsNot):
            if not (isinstance(right_node, ast.Constant) and right_node.value is None):
                raise _Refused(right_node, "'is' with anything but None")
            left = _operand(left_node)
            if not isinstance(left, Name):
                raise _Refused(left_node, "'is None' on a constant")
            parts.append(Missing(left, isinstance(op, ast.IsNot)))
        elif type(op) in _COMPARE:
            parts.append(Compare(_COMPARE[type(op)], _operand(left_node), _operand(right_node)))
        else:  # pragma: no cover - every comparison operator is listed above
            raise _Refused(node, type(op).__name__)
        left_node = right_node
    return parts[0] if len(parts) == 1 else And(tuple(parts))


def _names(node: Node | Operand | tuple | Any) -> set[str]:
    if isinstance(node, Name):
        return {node.id}
    if isinstance(node, Literal_):
        return set()
    if isinstance(node, Compare):
        return _names(node.left) | _names(node.right)
    if isinstance(node, Member):
        return _names(node.operand) | (_names(node.values) if isinstance(node.values, Name) else set())
    if isinstance(node, Missing | Truthy):
        return _names(node.operand)
    if isinstance(node, Not):
        return _names(node.item)
    if isinstance(node, And | Or):
        return set().union(*(_names(i) for i in node.items))
    return set()


# --------------------------------------------------------------------------- evaluation


class _TypeClash(Exception):
    pass


@dataclass(frozen=True)
class _Column:
    """One name's values, typed: numbers (float64, NaN missing), texts (object, None missing) or sets."""

    name: str
    kind: Kind
    values: np.ndarray
    missing: np.ndarray

    @classmethod
    def of(cls, name: str, raw: Any, n: int) -> _Column:
        if isinstance(raw, pd.Series | pd.Index):
            series = pd.Series(raw).reset_index(drop=True)
        elif isinstance(raw, np.ndarray):
            series = pd.Series(raw)
        else:
            series = pd.Series(list(raw), dtype=object if any(isinstance(v, str) for v in raw) else None)
        if len(series) != n:
            raise InputError(f"column {name!r} has {len(series)} values for {n} rows")
        dtype = series.dtype
        if pd.api.types.is_bool_dtype(dtype) or (
            pd.api.types.is_numeric_dtype(dtype) and not isinstance(dtype, pd.CategoricalDtype)
        ):
            values = series.to_numpy(dtype="float64", na_value=np.nan)
            return cls(name, "number", values, np.isnan(values))
        objects = series.astype(object).to_numpy()
        if len(objects) and any(isinstance(v, frozenset | set | tuple | list) for v in objects[: min(n, 50)]):
            sets = np.array([frozenset(v) if isinstance(v, frozenset | set | tuple | list) else frozenset()
                             for v in objects], dtype=object)
            return cls(name, "set", sets, np.zeros(n, dtype=bool))
        missing = pd.isna(objects).astype(bool) if len(objects) else np.zeros(0, dtype=bool)
        texts = np.where(missing, None, objects).astype(object)
        if len(texts):
            texts[~missing] = [str(v) for v in texts[~missing]]
        return cls(name, "text", texts, missing)


def _value(operand: Operand, columns: dict[str, _Column], n: int) -> _Column:
    if isinstance(operand, Name):
        return columns[operand.id]
    v = operand.value
    if isinstance(v, str):
        return _Column(repr(v), "text", np.full(n, v, dtype=object), np.zeros(n, dtype=bool))
    return _Column(repr(v), "number", np.full(n, float(v)), np.zeros(n, dtype=bool))


def _eval(node: Node, columns: dict[str, _Column], n: int) -> np.ndarray:
    if isinstance(node, And):
        out = np.ones(n, dtype=bool)
        for item in node.items:
            out &= _eval(item, columns, n)
        return out
    if isinstance(node, Or):
        out = np.zeros(n, dtype=bool)
        for item in node.items:
            out |= _eval(item, columns, n)
        return out
    if isinstance(node, Not):
        return ~_eval(node.item, columns, n)
    if isinstance(node, Truthy):
        col = columns[node.operand.id]
        if col.kind != "number":
            raise _TypeClash(f"{node.operand.id} holds {col.kind}s: compare it (==, in) instead of testing it alone")
        return ~col.missing & (col.values != 0)
    if isinstance(node, Missing):
        col = columns[node.operand.id]
        return ~col.missing if node.negate else col.missing.copy()
    if isinstance(node, Member):
        return _member(node, columns, n)
    left, right = _value(node.left, columns, n), _value(node.right, columns, n)
    if "set" in (left.kind, right.kind):
        raise _TypeClash(f"{left.name if left.kind == 'set' else right.name} is a set of texts: use 'in'")
    if left.kind != right.kind:
        raise _TypeClash(f"cannot compare {left.name} ({left.kind}) with {right.name} ({right.kind})")
    present = ~left.missing & ~right.missing
    if left.kind == "text":
        if node.op not in ("==", "!="):
            raise _TypeClash(f"texts compare only with ==, != or in, not {node.op} ({left.name}, {right.name})")
        equal = np.zeros(n, dtype=bool)
        equal[present] = left.values[present] == right.values[present]
        return present & (equal if node.op == "==" else ~equal)
    with np.errstate(invalid="ignore"):
        return present & _NUMPY_OPS[node.op](left.values, right.values)


def _member(node: Member, columns: dict[str, _Column], n: int) -> np.ndarray:
    operand = _value(node.operand, columns, n)
    if isinstance(node.values, Name):
        sets = columns[node.values.id]
        if sets.kind != "set":
            raise _TypeClash(f"'in {node.values.id}': {node.values.id} is not a set of texts; use a list [...]")
        if operand.kind != "text":
            raise _TypeClash(f"'{operand.name} in {node.values.id}' needs a text on the left")
        hit = np.fromiter((v in s for v, s in zip(operand.values, sets.values, strict=True)), dtype=bool, count=n)
        hit &= ~operand.missing
    else:
        kinds = {"text" if isinstance(v, str) else "number" for v in node.values}
        if len(kinds) > 1:
            raise _TypeClash(f"the list {list(node.values)} mixes texts and numbers")
        if operand.kind == "set":
            raise _TypeClash(f"{operand.name} is a set of texts: write '\"x\" in {operand.name}'")
        if kinds != {operand.kind}:
            raise _TypeClash(f"cannot test {operand.name} ({operand.kind}) against a list of {kinds.pop()}s")
        wanted = [str(v) for v in node.values] if operand.kind == "text" else [float(v) for v in node.values]
        hit = np.zeros(n, dtype=bool)
        present = ~operand.missing
        choices = np.asarray(wanted, dtype=object if operand.kind == "text" else None)
        hit[present] = np.isin(operand.values[present], choices)
    if node.negate:
        # "x not in [...]" on a missing x is false, like every comparison with a missing value
        return ~hit & ~operand.missing
    return hit
