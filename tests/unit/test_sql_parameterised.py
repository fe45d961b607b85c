"""Parameterised SQL only: no query text built from values at run time.

Walks the syntax tree of every module in shared/, services/ and ops/ and looks
at the SQL argument of every asyncpg ``execute``, ``executemany``, ``fetch``,
``fetchrow``, ``fetchval`` and ``copy_*`` call. The text may be put together
only from constants: string literals, module or local names bound to
constants (column lists and the like), ``", ".join`` of constants, f-strings
and ``+``/``%``/``.format`` of such parts, and :func:`shared.db.ident` for a
schema, table or role name. Anything else (a parameter, an attribute, a call)
is a value that belongs in ``$1``.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("shared", "services", "ops")
SQL_METHODS = {
    "execute",
    "executemany",
    "fetch",
    "fetchrow",
    "fetchval",
    "copy_from_query",
    "copy_to_table",
    "copy_records_to_table",
}
#: The one helper whose result may be spliced into SQL: it quotes a checked identifier.
IDENTIFIER_HELPERS = {"ident"}
#: SQL text that is not a Python constant yet no request can touch, and why.
ALLOWED = {
    ("shared/migrations.py", "m.sql"): "a migration file's own text, from the repository",
}
_MODULE = "__module__:"


@dataclass
class Scope:
    """Names bound in a module or function, with every expression ever assigned to them."""

    bindings: dict[str, list[ast.expr | None]] = field(default_factory=dict)
    parent: Scope | None = None

    def bind(self, name: str, value: ast.expr | None) -> None:
        self.bindings.setdefault(name, []).append(value)

    def lookup(self, name: str) -> list[ast.expr | None] | None:
        if name in self.bindings:
            return self.bindings[name]
        return self.parent.lookup(name) if self.parent else None


def _scope_of(body: list[ast.stmt], parent: Scope | None, args: ast.arguments | None) -> Scope:
    scope = Scope(parent=parent)
    if args is not None:
        for a in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]:
            if a is not None:
                scope.bind(a.arg, None)  # a parameter: any value at all
    for node in body:
        for sub in ast.walk(node):
            if isinstance(sub, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                continue
            if isinstance(sub, ast.Assign):
                for target in sub.targets:
                    if (
                        isinstance(target, ast.Tuple)
                        and isinstance(sub.value, ast.Tuple)
                        and len(target.elts) == len(sub.value.elts)
                    ):
                        for elt, value in zip(target.elts, sub.value.elts, strict=True):
                            for name in _names(elt):
                                scope.bind(name, value if isinstance(elt, ast.Name) else None)
                        continue
                    for name in _names(target):
                        value = sub.value if isinstance(target, ast.Name) else None
                        scope.bind(name, value)
            elif isinstance(sub, ast.AnnAssign | ast.AugAssign) and isinstance(
                sub.target, ast.Name
            ):
                value = sub.value
                if isinstance(sub, ast.AugAssign):
                    value = ast.BinOp(ast.Name(sub.target.id), sub.op, sub.value)
                scope.bind(sub.target.id, value)
            elif isinstance(sub, ast.For | ast.AsyncFor | ast.comprehension):
                for name in _names(sub.target):
                    scope.bind(name, ast.Subscript(sub.iter, ast.Constant(0)))
            elif isinstance(sub, ast.ImportFrom) and sub.module and sub.level == 0:
                for alias in sub.names:
                    # Resolved lazily: a constant imported from a project module is still one.
                    ref = ast.Attribute(ast.Name(_MODULE + sub.module), alias.name)
                    scope.bind(alias.asname or alias.name, ref)
            elif isinstance(sub, ast.NamedExpr):
                scope.bind(sub.target.id, sub.value)
            elif isinstance(sub, ast.withitem) and sub.optional_vars is not None:
                for name in _names(sub.optional_vars):
                    scope.bind(name, None)
    return scope


def _names(target: ast.expr) -> list[str]:
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, ast.Tuple | ast.List):
        return [n for elt in target.elts for n in _names(elt)]
    if isinstance(target, ast.Starred):
        return _names(target.value)
    return []


def constant(expr: ast.expr | None, scope: Scope, seen: frozenset[str] = frozenset()) -> bool:
    """Whether ``expr`` is SQL text (or a part of it) that no run-time value can change."""
    if expr is None:
        return False
    match expr:
        case ast.Constant():
            return True
        case ast.JoinedStr(values=values):
            return all(constant(v, scope, seen) for v in values)
        case ast.FormattedValue(value=value):
            return constant(value, scope, seen)
        case ast.BinOp(left=left, right=right):
            return constant(left, scope, seen) and constant(right, scope, seen)
        case ast.Tuple(elts=elts) | ast.List(elts=elts) | ast.Set(elts=elts):
            return all(constant(e, scope, seen) for e in elts)
        case ast.Subscript(value=value, slice=index):
            return constant(value, scope, seen) and constant(index, scope, seen)
        case ast.IfExp(body=body, orelse=orelse):
            # The condition chooses between constants: still no value in the text.
            return constant(body, scope, seen) and constant(orelse, scope, seen)
        case ast.Name(id=name):
            if name in seen:
                return True  # x = x + "..." loops back to a value already being checked
            values = scope.lookup(name)
            if values is None:
                return False
            return all(constant(v, scope, seen | {name}) for v in values)
        case ast.GeneratorExp(elt=elt, generators=gens) | ast.ListComp(elt=elt, generators=gens):
            inner = Scope(parent=scope)
            for gen in gens:
                for name in _names(gen.target):
                    inner.bind(name, ast.Subscript(gen.iter, ast.Constant(0)))
            return constant(elt, inner, seen)
        case ast.Dict(keys=keys, values=values):
            return all(constant(p, scope, seen) for p in [*keys, *values] if p is not None)
        case ast.Call(
            func=ast.Attribute(value=receiver, attr="items" | "keys" | "values"), args=[]
        ):
            return constant(receiver, scope, seen)
        case ast.Starred(value=value):
            return constant(value, scope, seen)
        case ast.Slice(lower=lower, upper=upper, step=step):
            return all(constant(p, scope, seen) for p in (lower, upper, step) if p is not None)
        case ast.Attribute(value=ast.Name(id=module), attr=name) if module.startswith(_MODULE):
            return _imported_constant(module.removeprefix(_MODULE), name)
        case ast.Call(func=ast.Name(id="enumerate" | "zip" | "range" | "len"), args=args):
            return all(constant(a, scope, seen) for a in args) and all(
                constant(k.value, scope, seen) for k in expr.keywords
            )
        case ast.Call(func=ast.Name(id=helper)) if helper in IDENTIFIER_HELPERS:
            return True
        case ast.Call(func=ast.Attribute(value=receiver, attr="join"), args=[arg]):
            return constant(receiver, scope, seen) and constant(arg, scope, seen)
        case ast.Call(func=ast.Attribute(value=receiver, attr="format"), args=args, keywords=kws):
            return constant(receiver, scope, seen) and all(
                constant(a, scope, seen) for a in [*args, *(k.value for k in kws)]
            )
        case ast.Call(
            func=ast.Name(id="tuple" | "list" | "sorted" | "str" | "frozenset" | "set"), args=[arg]
        ):
            return constant(arg, scope, seen)
    return False


_module_scopes: dict[str, Scope | None] = {}


def _imported_constant(module: str, name: str) -> bool:
    if module not in _module_scopes:
        path = ROOT / (module.replace(".", "/") + ".py")
        if not path.is_file():
            path = ROOT / module.replace(".", "/") / "__init__.py"
        scope = None
        if module.split(".")[0] in PACKAGES and path.is_file():
            tree = ast.parse(path.read_text(), str(path))
            scope = _scope_of(tree.body, None, None)
        _module_scopes[module] = scope
    scope = _module_scopes[module]
    return scope is not None and constant(ast.Name(name), scope)


def offenders_in(source: str, filename: str) -> list[str]:
    tree = ast.parse(source, filename)
    found: list[str] = []

    def visit(node: ast.AST, scope: Scope) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            scope = _scope_of(node.body, scope, node.args)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in SQL_METHODS
        ):
            sql = node.args[0] if node.args else None
            if sql is None:
                sql = next((k.value for k in node.keywords if k.arg == "query"), None)
            allowed = sql is not None and (filename, ast.unparse(sql)) in ALLOWED
            if sql is not None and not allowed and not constant(sql, scope):
                found.append(f"{filename}:{node.lineno}: {ast.unparse(sql)[:80]}")
        for child in ast.iter_child_nodes(node):
            visit(child, scope)

    visit(tree, _scope_of(tree.body, None, None))
    return found


def modules() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def test_no_sql_is_built_from_values() -> None:
    found = [
        offence
        for path in modules()
        for offence in offenders_in(path.read_text(), str(path.relative_to(ROOT)))
    ]
    assert found == [], "SQL text built from run-time values:\n" + "\n".join(found)
    # Not vacuous: the scan does see the project's queries.
    calls = sum(
        1
        for path in modules()
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in SQL_METHODS
    )
    assert calls > 80, calls


@pytest.mark.parametrize(
    "code",
    [
        "async def f(conn, name):\n    await conn.fetch(f\"SELECT * FROM t WHERE n = '{name}'\")",
        'async def f(conn, name):\n    await conn.execute("DELETE FROM t WHERE n = " + name)',
        'async def f(conn, name):\n    await conn.fetchval("SELECT %s" % name)',
        'async def f(conn, name):\n    await conn.fetchrow("SELECT {}".format(name))',
        "async def f(conn, self):\n    sql = 'SELECT ' + self.column\n    await conn.fetch(sql)",
        "async def f(conn, cols):\n    await conn.fetch(f\"SELECT {', '.join(cols)} FROM t\")",
        'async def f(conn, s):\n    await conn.execute(f"SET search_path TO {s}")',
        'async def f(conn, s):\n    q = "SELECT 1"\n    q += s\n    await conn.fetch(q)',
    ],
)
def test_the_scan_catches_sql_built_from_values(code: str) -> None:
    assert offenders_in(code, "x.py") != []


@pytest.mark.parametrize(
    "code",
    [
        'async def f(conn, v):\n    await conn.fetch("SELECT * FROM t WHERE n = $1", v)',
        'COLS = ("a", "b")\nasync def f(conn):\n    await conn.fetch(f"SELECT {\', \'.join(COLS)} FROM t")',
        'async def f(conn, s):\n    await conn.execute(f"CREATE SCHEMA {ident(s)}")',
        'async def f(conn, v):\n    w = "a = $1" if v else "TRUE"\n    await conn.fetch("SELECT * FROM t WHERE " + w, v)',
    ],
)
def test_the_scan_lets_constant_sql_through(code: str) -> None:
    assert offenders_in(code, "x.py") == []
