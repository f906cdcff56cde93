"""The shape every public op has: check the arguments, pick the backend, run it.

    @public_op(reference=F.relu, check=_check_relu)
    def relu(input, inplace=False, *, backend):
        return _Relu.apply(input, backend)

`check(*args, **kwargs)` validates for every backend (so the reference backend rejects the same
bad input); `reference(*args, **kwargs)` is the plain-torch ground truth used for backend='reference';
the body runs for the kernel backends with the resolved backend name.
"""
from __future__ import annotations

import functools
import inspect
from typing import Callable, Optional

import torch

from .._registry import cpu_by_default, resolve_backend


class _PlainCall:
    """Stands in for autograd's ctx when no gradient will be taken, so forward() runs as a plain
    function: what it saves or marks for a backward is dropped."""

    def __init__(self, n_inputs: int):
        self.needs_input_grad = (False,) * n_inputs

    def save_for_backward(self, *tensors):
        pass

    def mark_dirty(self, *tensors):
        pass

    def mark_non_differentiable(self, *tensors):
        pass


_Tensor = torch.Tensor
_any_autocast = torch._C._is_any_autocast_enabled
_functorch_active = torch._C._are_functorch_transforms_active
_unwrap_if_dead = torch._C._functorch.unwrap_if_dead


def apply(function, *args):
    """function.apply(*args) for a torch.autograd.Function; when no tensor argument needs a
    gradient (inference, no_grad), its forward runs directly, without autograd's per-call
    bookkeeping (about 10 microseconds, most of a small layer's time)."""
    if torch.is_grad_enabled():
        for a in args:
            if isinstance(a, _Tensor) and a.requires_grad:
                out = _autograd_apply(function, args)
                break
        else:
            out = function.forward(_PlainCall(len(args)), *args)
    else:
        out = function.forward(_PlainCall(len(args)), *args)
    _check_device(function, args, out)
    return out


def _autograd_apply(function, args):
    """function.apply(*args). Function.apply walks every argument with pytree to unwrap dead
    functorch wrappers (a ConvConfig alone is a dozen leaves: several microseconds); fastcnn passes
    tensors only at the top level, so the same unwrapping is one pass over args. Under functorch
    transforms and while torch.compile traces (which recognises Function.apply itself) the full
    Function.apply runs."""
    if _functorch_active() or torch.compiler.is_compiling():
        return function.apply(*args)
    args = [_unwrap_if_dead(a) if isinstance(a, _Tensor) else a for a in args]
    return super(torch.autograd.Function, function).apply(*args)


def once_differentiable(backward):
    """torch.autograd.function.once_differentiable without its cost in the usual backward: autograd
    runs a backward with grad mode off unless create_graph=True, and then torch's wrapper only adds
    a no_grad block (~1 us per op); with grad mode on, torch's wrapper runs (it marks the results so
    that differentiating them again raises)."""
    guarded = torch.autograd.function.once_differentiable(backward)

    @functools.wraps(backward)
    def wrapper(ctx, *grads):
        if not torch.is_grad_enabled():
            return backward(ctx, *grads)
        return guarded(ctx, *grads)
    return wrapper


def _check_device(function, args, out) -> None:
    """Every output on the first input tensor's device: a launcher that allocates on the default
    (CPU) device fails here, naming the op, not later in an unrelated torch call. (Gradients are
    checked by autograd itself: 'invalid gradient ... expected device'.)"""
    first = args[0] if isinstance(args[0], _Tensor) else next((a for a in args if isinstance(a, _Tensor)), None)
    if first is None:
        return
    if isinstance(out, _Tensor) and out.is_cpu and first.is_cpu:  # the common case, without device objects
        return
    device = first.device
    for o in out if isinstance(out, (tuple, list)) else (out,):
        if isinstance(o, _Tensor) and o.device != device:
            raise RuntimeError(f"fastcnn: {function.__name__} returned an output on {o.device} for an input on "
                               f"{device}: the backend's kernel allocated it on the wrong device")


_SCALAR, _TENSOR = "scalar", "tensor"
_KEY_KIND = {int: _SCALAR, float: _SCALAR, str: _SCALAR, bool: _SCALAR, type(None): _SCALAR,
             _Tensor: _TENSOR, torch.nn.Parameter: _TENSOR}
_is_compiling = torch.compiler.is_compiling


class ConfigMemo:
    """What an op's argument checks computed (output sizes, normalised pairs), remembered per
    configuration: tensors by (shape, dtype, device), scalars by (type, value) (True equals 1 but must
    stay rejected where an int is expected), tuples of exact ints by value; anything else (a list, a
    numpy array) is never remembered. A layer calls its op with one configuration every step, so from
    the second call the checks' result is a dict lookup; a configuration never seen before takes the
    full checks. Only checks that depend on nothing but the key may be memoised (not tensor values,
    not requires_grad). Not used while a graph is traced."""

    def __init__(self, max_entries: int = 4096):
        self._entries: dict = {}
        self._max = max_entries

    def key(self, *parts):
        """The key of a call, or None where it must not be remembered."""
        if _is_compiling():
            return None
        out = []
        add = out.append
        for p in parts:
            kind = type(p)
            what = _KEY_KIND.get(kind)
            if what is _SCALAR:
                add(kind)  # the type first: True and 1 are equal as keys
                add(p)
            elif what is _TENSOR or isinstance(p, _Tensor):
                add(p.shape)  # a torch.Size: never equal to a scalar's type or a plain tuple of ints
                add(p.dtype)
                add(p.device)
            elif kind is tuple and all(type(v) is int for v in p):
                add(tuple)
                add(p)
            else:
                return None
        return tuple(out)

    def get(self, key):
        return None if key is None else self._entries.get(key)

    def put(self, key, value) -> None:
        if key is None:
            return
        if len(self._entries) >= self._max:
            self._entries.clear()
        self._entries[key] = value

    def clear(self) -> None:
        self._entries.clear()


def memoised(check: Callable) -> Callable:
    """check(*args, **kwargs) skipped for a configuration it has passed before (ConfigMemo); for
    checks that look at nothing but tensor metadata and argument values."""
    memo = ConfigMemo()

    @functools.wraps(check)
    def checked(*args, **kwargs):
        key = memo.key(*args, *kwargs, *kwargs.values())
        if memo.get(key) is None:
            check(*args, **kwargs)
            memo.put(key, True)
    return checked


def refuse_autocast(tensors, op_name: str) -> None:
    """fastcnn's kernels compute float32/float64 only. Inside torch.autocast a torch layer would run
    in float16/bfloat16; rather than silently stay float32 (or hand the call to torch's kernels),
    a kernel backend refuses it, naming the way out."""
    for t in tensors:
        kind = "cpu" if t.is_cpu else t.device.type
        if kind in ("cpu", "cuda") and torch.is_autocast_enabled(kind):
            raise NotImplementedError(
                f"{op_name}: fastcnn kernels compute float32/float64 only and do not follow torch.autocast "
                f"({kind}, {torch.get_autocast_dtype(kind)}); run fastcnn layers outside autocast (wrap them in "
                f"torch.autocast('{kind}', enabled=False)) or use backend='reference'")
        return  # every tensor of a call is on one device (the checks make sure)


_PLAN_MEMOS: list = []  # the memos of every public_op with a `lean` factory (their entries hold plans)


def forget_plans() -> None:
    """Drops every remembered lean plan (fastcnn.ops._eager.python_path switches the eager layer, which
    plans call directly): the next call of each configuration works its plan out again."""
    for memo in _PLAN_MEMOS:
        memo.clear()


def public_op(reference: Callable, check: Optional[Callable] = None, repeat=None, lean=None):
    """A body with a keyword-only `checked` parameter receives what check() returned (what the checks
    computed, e.g. normalised geometry), so the op need not work it out, or look it up, again.

    `repeat` (True, or a predicate repeat(*args, **kwargs) -> bool) says that check()'s verdict on a
    configuration depends on nothing but its ConfigMemo key (shapes, dtypes, devices, argument
    values: no tensor values, no requires_grad); a predicate says it for some configurations only
    (relu's in-place check reads requires_grad). A configuration that passed the checks once on the
    cpu backend then runs the body directly on its later calls, with the remembered `checked`: no
    check, no backend resolution (the lean path the eager op layer, fastcnn/ops/_eager.py, needs).
    Not while autocast or functorch transforms are active, nor while a graph is traced. Checks that
    read tensor values (cross_entropy's class indices) belong in the body, which runs on every call.

    `lean` (with `repeat`): lean(args, kwargs, checked) -> a plan or None, asked once per configuration
    on that first cpu call: a plan is a callable taking the op's own arguments (no backend) that the
    configuration's repeats call instead of the body, e.g. straight into an eager op with the scalar
    arguments it needs worked out once (the body's per-call branches, conversions and runnable() cost
    as much as the C++ op's call itself on a tiny tensor). It may decide only on what the memo key
    holds (no strides, no requires_grad); None leaves the repeats to the body."""
    def deco(body):
        sig = inspect.signature(body)
        params = [p for p in sig.parameters.values() if p.name not in ("backend", "checked")]
        public_sig = sig.replace(parameters=params + [
            inspect.Parameter("backend", inspect.Parameter.KEYWORD_ONLY, default=None)])
        takes_checked = "checked" in sig.parameters
        memo = ConfigMemo() if repeat is not None else None
        if lean is not None:
            assert memo is not None, "lean plans need repeat="
            _PLAN_MEMOS.append(memo)
        name = body.__name__

        def full_call(args, backend, kwargs):
            checked = check(*args, **kwargs) if check is not None else None
            tensors = [a for a in args if isinstance(a, _Tensor)]
            if kwargs:
                tensors += [a for a in kwargs.values() if isinstance(a, _Tensor)]
            chosen = resolve_backend(backend, tensors)
            if chosen == "reference":
                return reference(*args, **kwargs)
            if _any_autocast():
                refuse_autocast(tensors, name)
            if memo is not None and chosen == "cpu" and (repeat is True or repeat(*args, **kwargs)):
                key = memo.key(*args, *kwargs, *kwargs.values())
                if key is not None:
                    memo.put(key, (checked, None if lean is None else lean(args, kwargs, checked)))
            if takes_checked:
                return body(*args, backend=chosen, checked=checked, **kwargs)
            return body(*args, backend=chosen, **kwargs)

        if memo is None:
            @functools.wraps(body)
            def wrapper(*args, backend: Optional[str] = None, **kwargs):
                return full_call(args, backend, kwargs)
        else:
            @functools.wraps(body)
            def wrapper(*args, backend: Optional[str] = None, **kwargs):
                if (backend == "cpu" or backend is None and cpu_by_default()) and not _any_autocast() \
                        and not _functorch_active():
                    seen = memo.get(memo.key(*args, *kwargs, *kwargs.values()) if kwargs else memo.key(*args))
                    if seen is not None:  # a repeat of a configuration that passed the checks on cpu
                        if seen[1] is not None:
                            return seen[1](*args, **kwargs)
                        if takes_checked:
                            return body(*args, backend="cpu", checked=seen[0], **kwargs)
                        return body(*args, backend="cpu", **kwargs)
                return full_call(args, backend, kwargs)

        wrapper.__signature__ = public_sig
        wrapper.reference = reference
        return wrapper

    return deco
