"""A step's callable, checked without running its module: the module is found with the
import system's finders and its source read with `ast`.

Guarantees: no module code runs here — not the module's, not its parent packages'
`__init__` — so validating a spec cannot print, exit or touch the validating process.
What the source states plainly is checked (a `def`, `async def`, `lambda`, a class's
`__init__`, a `staticmethod`/`classmethod`, a name bound to a literal); a name bound any
other way (imported, assigned from a call, decorated with something else, bound twice) is
accepted when present: the worker that imports the module finds out. A module without
source (a compiled extension, a builtin) is only checked to exist.
"""

from __future__ import annotations

import ast
import inspect
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.machinery import ModuleSpec
from typing import Any

# The ast module of some CPython 3.11 releases raises "AST constructor recursion depth
# mismatch" when two threads build ASTs at once (concurrent API requests): one at a time.
_PARSING = threading.Lock()
_DEF = ast.FunctionDef | ast.AsyncFunctionDef
_LITERALS = (
    ast.Constant,
    ast.List,
    ast.Tuple,
    ast.Dict,
    ast.Set,
    ast.JoinedStr,
    ast.ListComp,
    ast.DictComp,
    ast.SetComp,
    ast.GeneratorExp,
)


class CallableProblem(Exception):
    """The target cannot be found, or is certainly not callable."""


@dataclass(frozen=True)
class Found:
    """A callable found in source: its signature, or None when the source does not say."""

    signature: inspect.Signature | None


def find_callable(target: str) -> Found:
    """`package.module:qualname` → what its source says; CallableProblem if it is absent."""
    module_name, _, attr = target.partition(":")
    spec = find_module_spec(module_name)
    source = _source(spec, module_name)
    if source is None:
        return Found(None)  # no source to read: the module exists, the worker checks the rest
    try:
        with _PARSING:
            tree = ast.parse(source, filename=spec.origin or module_name)
    except SyntaxError as exc:
        raise CallableProblem(f"{module_name} has a syntax error: {exc}") from None
    body: Sequence[ast.stmt] = tree.body
    owner = module_name
    parts = attr.split(".")
    for depth, name in enumerate(parts):
        bindings = _bindings(body, name)
        if not bindings:
            if depth == 0 and _open_ended(body):
                return Found(None)  # `from x import *` or a module `__getattr__`
            raise CallableProblem(f"{owner!r} has no attribute {name!r}")
        if len(bindings) > 1:
            return Found(None)
        node = bindings[0]
        last = depth == len(parts) - 1
        if isinstance(node, ast.ClassDef):
            if last:
                return _class_signature(node)
            body, owner = node.body, name
            continue
        if not last:
            return Found(None)  # an attribute of a function or a value: not read from source
        return _binding_signature(node, in_class=depth > 0, target=target)
    return Found(None)  # pragma: no cover - the loop always returns


def find_module_spec(name: str) -> ModuleSpec:
    """The module's spec, found as `import` would find it but without importing anything:
    a parent package's `__init__` is not run (importlib.util.find_spec would run it)."""
    parts = name.split(".")
    path: Sequence[str] | None = None
    spec: ModuleSpec | None = None
    for i in range(len(parts)):
        full = ".".join(parts[: i + 1])
        loaded = sys.modules.get(full)
        spec = getattr(loaded, "__spec__", None) if loaded is not None else None
        if spec is None:
            spec = _from_finders(full, path)
        if spec is None:
            raise ModuleNotFoundError(f"no module named {full!r}", name=full)
        if i < len(parts) - 1:
            path = spec.submodule_search_locations
            if path is None:
                child = ".".join(parts[: i + 2])
                raise ModuleNotFoundError(
                    f"no module named {child!r} ({full!r} is not a package)", name=child
                )
    assert spec is not None
    return spec


def _from_finders(name: str, path: Sequence[str] | None) -> ModuleSpec | None:
    for finder in sys.meta_path:
        find = getattr(finder, "find_spec", None)
        if find is None:
            continue
        spec = find(name, path)
        if spec is not None:
            return spec
    return None


def _source(spec: ModuleSpec, name: str) -> str | None:
    get_source = getattr(spec.loader, "get_source", None)
    if get_source is None:
        return None
    try:
        return get_source(name)
    except (ImportError, OSError):
        return None


def _bindings(body: Sequence[ast.stmt], name: str) -> list[ast.AST]:
    """The statements of `body` (descending into if/try/with blocks) that bind `name`."""
    found: list[ast.AST] = []
    for node in body:
        if isinstance(node, _DEF | ast.ClassDef) and node.name == name:
            found.append(node)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(_binds(t, name) for t in targets):
                found.append(node)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                if (alias.asname or alias.name.split(".")[0]) == name:
                    found.append(node)
        elif isinstance(node, ast.If | ast.Try | ast.With | ast.For | ast.While):
            blocks = [node.body, getattr(node, "orelse", []), getattr(node, "finalbody", [])]
            blocks += [h.body for h in getattr(node, "handlers", [])]
            for block in blocks:
                found += _bindings(block, name)
    return found


def _binds(target: ast.expr, name: str) -> bool:
    if isinstance(target, ast.Name):
        return target.id == name
    if isinstance(target, ast.Tuple | ast.List):
        return any(_binds(t, name) for t in target.elts)
    return False


def _open_ended(body: Sequence[ast.stmt]) -> bool:
    for node in body:
        if isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names):
            return True
        if isinstance(node, _DEF) and node.name == "__getattr__":
            return True
    return False


def _class_signature(node: ast.ClassDef) -> Found:
    if node.decorator_list or node.keywords:
        return Found(None)  # a metaclass or decorator may change how it is called
    inits = _bindings(node.body, "__init__")
    if len(inits) != 1 or not isinstance(inits[0], _DEF) or inits[0].decorator_list:
        return Found(None)  # inherited or unusual: not read from source
    return Found(_drop_first(_signature(inits[0].args)))


def _binding_signature(node: ast.AST, *, in_class: bool, target: str) -> Found:
    if isinstance(node, _DEF):
        decorators = [_decorator_name(d) for d in node.decorator_list]
        if not decorators:
            return Found(_signature(node.args))
        if in_class and decorators == ["staticmethod"]:
            return Found(_signature(node.args))
        if in_class and decorators == ["classmethod"]:
            return Found(_drop_first(_signature(node.args)))
        return Found(None)
    value = node.value if isinstance(node, ast.Assign | ast.AnnAssign) else None
    if isinstance(value, ast.Lambda):
        return Found(_signature(value.args))
    if isinstance(value, _LITERALS):
        raise CallableProblem(f"{target} is not callable")
    if isinstance(node, ast.ImportFrom) and node.module == "__future__":
        raise CallableProblem(f"{target} is not callable")
    return Found(None)


def _decorator_name(node: ast.expr) -> str | None:
    return node.id if isinstance(node, ast.Name) else None


def _signature(args: ast.arguments) -> inspect.Signature:
    kind = inspect.Parameter
    params: list[inspect.Parameter] = []
    positional = [*args.posonlyargs, *args.args]
    defaults: list[Any] = [kind.empty] * (len(positional) - len(args.defaults))
    defaults += [...] * len(args.defaults)
    for i, (arg, default) in enumerate(zip(positional, defaults, strict=True)):
        how = kind.POSITIONAL_ONLY if i < len(args.posonlyargs) else kind.POSITIONAL_OR_KEYWORD
        params.append(kind(arg.arg, how, default=default))
    if args.vararg is not None:
        params.append(kind(args.vararg.arg, kind.VAR_POSITIONAL))
    for arg, kw_default in zip(args.kwonlyargs, args.kw_defaults, strict=True):
        default = kind.empty if kw_default is None else ...
        params.append(kind(arg.arg, kind.KEYWORD_ONLY, default=default))
    if args.kwarg is not None:
        params.append(kind(args.kwarg.arg, kind.VAR_KEYWORD))
    return inspect.Signature(params)


def _drop_first(signature: inspect.Signature) -> inspect.Signature:
    params = list(signature.parameters.values())
    if params and params[0].kind in (params[0].POSITIONAL_ONLY, params[0].POSITIONAL_OR_KEYWORD):
        params = params[1:]
    return signature.replace(parameters=params)


def select_keywords(
    signature: inspect.Signature | None, parameters: Sequence[str], foreach: bool
) -> tuple[tuple[str, ...] | None, bool]:
    """Which of a point's parameters a callable is passed (None: all, it takes **kwargs)
    and whether it is passed `ctx`; with no signature, every parameter and no `ctx`."""
    if signature is None:
        return None, False
    params = signature.parameters
    var_kw = any(p.kind is p.VAR_KEYWORD for p in params.values())
    pass_ctx = "ctx" in params
    if var_kw or not foreach:
        return (None if var_kw and foreach else ()), pass_ctx
    return tuple(name for name in parameters if name in params), pass_ctx
