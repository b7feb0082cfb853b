r"""Layers: modules that hold parameters and map a Variable to a Variable.

A :class:`Module` is any object with a ``forward`` method whose learnable
:class:`~autodiff.core.Parameter` objects are stored as attributes: directly,
inside other modules, or inside lists and tuples of modules. The base class
finds them by walking those attributes, so a model never lists its own
parameters.

Calling a layer on an array or a :class:`~autodiff.core.Variable` returns a
Variable, exactly like calling an operation, so layers and operations mix
freely.

Parameters are ``float32`` by default (``dtype=np.float32``): that halves the
memory and the time of every matrix product compared to ``float64`` and is
plenty for training. Feed ``float32`` data and everything stays ``float32``.
Pass ``dtype=np.float64`` for gradient checks.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from autodiff import ops
from autodiff.core import DTypeLike, Parameter, Variable

__all__ = [
    "Module",
    "Linear",
    "Conv2d",
    "MaxPool2d",
    "Flatten",
    "Sequential",
    "ReLU",
    "Sigmoid",
    "Tanh",
    "mlp",
    "make_rng",
]

#: The initialisations :class:`Linear` knows.
INITS = ("he", "glorot", "uniform")


def make_rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    """Return a NumPy random generator for ``seed``.

    Parameters
    ----------
    seed
        An int (a fresh, reproducible generator), an existing
        :class:`numpy.random.Generator` (used as it is, so several layers can
        share one stream), or ``None`` (fresh entropy from the OS).

    Examples
    --------
    >>> make_rng(0).integers(10, size=3)
    array([8, 6, 5])
    """
    if seed is None or isinstance(seed, (int, np.integer)):
        return np.random.default_rng(seed)
    if isinstance(seed, np.random.Generator):
        return seed
    raise TypeError(
        f"seed must be an int, a numpy.random.Generator or None, but got "
        f"{type(seed).__name__}. Use for example seed=0, or "
        "seed=np.random.default_rng(0) to share one generator between layers."
    )


class Module:
    """Base class of layers and models.

    A subclass stores its parameters and sub-modules as attributes and
    implements :meth:`forward`. :meth:`named_parameters` then finds every
    parameter, named by the path of attributes that leads to it, such as
    ``"layers.0.weight"``.

    Examples
    --------
    >>> class Scale(Module):
    ...     def __init__(self):
    ...         self.factor = Parameter(np.float32(2.0))
    ...     def forward(self, x):
    ...         return x * self.factor
    >>> model = Scale()
    >>> model(np.array([1.0, 2.0], dtype=np.float32)).value
    array([2., 4.], dtype=float32)
    >>> [name for name, _ in model.named_parameters()]
    ['factor']
    """

    def forward(self, x: Any) -> Variable:
        """Compute the output for the input ``x``; subclasses implement it."""
        raise NotImplementedError(
            f"{type(self).__name__} has no forward method. Implement "
            f"{type(self).__name__}.forward(self, x) and return a Variable."
        )

    def __call__(self, x: Any) -> Variable:
        return self.forward(x)

    def named_parameters(self) -> Iterator[tuple[str, Parameter]]:
        """Yield ``(name, parameter)`` for every parameter, each once.

        The walk visits the attributes in the order they were assigned,
        descends into sub-modules and into lists and tuples (whose items are
        named by their index), and skips a parameter it has already seen, so
        a shared parameter appears once, under its first name.
        """
        seen: set[int] = set()
        yield from _walk(self, "", seen)

    def parameters(self) -> list[Parameter]:
        """Every parameter of the module, in the order of :meth:`named_parameters`."""
        return [parameter for _, parameter in self.named_parameters()]

    def parameter_count(self) -> int:
        """The number of learnable numbers: the sum of the parameters' sizes."""
        return sum(parameter.size for parameter in self.parameters())

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _walk(value: Any, prefix: str, seen: set[int]) -> Iterator[tuple[str, Parameter]]:
    if isinstance(value, Parameter):
        if id(value) not in seen:
            seen.add(id(value))
            yield prefix, value
    elif isinstance(value, Module):
        if id(value) in seen:  # a sub-module used twice
            return
        seen.add(id(value))
        for name, attribute in vars(value).items():
            yield from _walk(attribute, f"{prefix}.{name}" if prefix else name, seen)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _walk(item, f"{prefix}.{index}" if prefix else str(index), seen)


def _positive_int(value: Any, name: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{where}: {name} must be a positive int, but got {value!r}.")
    return int(value)


def _float_dtype(dtype: DTypeLike, where: str) -> np.dtype[Any]:
    if np.dtype(dtype).kind != "f":
        raise TypeError(
            f"{where}: dtype must be a floating-point type such as np.float32, "
            f"but got {np.dtype(dtype)}."
        )
    return np.dtype(dtype)


class Linear(Module):
    r"""Affine layer: :math:`y = x W + b`.

    The weight :math:`W` has shape ``(in_features, out_features)``, so a
    batch of inputs, one per row, is multiplied from the left, as in the
    exercise's ``AffineLayer``. The bias starts at zero. The layer computes
    ``x @ weight + bias`` with the fused :class:`~autodiff.ops.Affine` operation.

    Parameters
    ----------
    in_features, out_features
        The sizes of the input and the output.
    init
        How to draw the initial weights:

        - ``"he"`` (default): normal with standard deviation
          :math:`\sqrt{2 / n_\text{in}}`, which keeps the size of the signal
          constant through ReLU layers (He et al., 2015);
        - ``"glorot"``: uniform on :math:`\pm\sqrt{6 / (n_\text{in} + n_\text{out})}`,
          suited to tanh and sigmoid (Glorot and Bengio, 2010);
        - ``"uniform"``: uniform on :math:`\pm 0.01`, the exercise's choice.
    seed
        An int or a :class:`numpy.random.Generator` for reproducible weights;
        ``None`` draws fresh ones each time.
    dtype
        The floating-point type of the parameters.

    Attributes
    ----------
    weight : Parameter
        Shape ``(in_features, out_features)``.
    bias : Parameter
        Shape ``(out_features,)``.

    Examples
    --------
    >>> layer = Linear(3, 2, seed=0)
    >>> layer.weight.shape, layer.bias.shape, layer.weight.dtype
    ((3, 2), (2,), dtype('float32'))
    >>> layer(np.ones((5, 3), dtype=np.float32)).shape
    (5, 2)
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        init: str = "he",
        seed: int | np.random.Generator | None = None,
        dtype: DTypeLike = np.float32,
    ) -> None:
        self.in_features = _positive_int(in_features, "in_features", "Linear")
        self.out_features = _positive_int(out_features, "out_features", "Linear")
        if init not in INITS:
            raise ValueError(
                f"Linear: unknown init={init!r}; "
                f"use one of {', '.join(map(repr, INITS))}."
            )
        dtype = _float_dtype(dtype, "Linear")
        self.init = init
        rng = make_rng(seed)
        shape = (self.in_features, self.out_features)
        if init == "he":
            weight = rng.normal(0.0, np.sqrt(2.0 / in_features), size=shape)
        elif init == "glorot":
            limit = np.sqrt(6.0 / (in_features + out_features))
            weight = rng.uniform(-limit, limit, size=shape)
        else:
            weight = rng.uniform(-0.01, 0.01, size=shape)
        self.weight = Parameter(weight.astype(dtype))
        self.bias = Parameter(np.zeros(self.out_features, dtype=dtype))

    def forward(self, x: Any) -> Variable:
        return ops.Affine(x, self.weight, self.bias)

    def __repr__(self) -> str:
        return (
            f"Linear({self.in_features}, {self.out_features}, init={self.init!r}, "
            f"dtype={self.weight.dtype})"
        )


class Conv2d(Module):
    r"""Convolutional layer: :class:`~autodiff.ops.Conv2d` plus a bias per output channel.

    .. math:: y_{n,o} = b_o + \sum_c w_{o,c} \star x_{n,c}

    where :math:`\star` is the cross-correlation of
    :class:`~autodiff.ops.Conv2d`. Input and output have PyTorch's layout,
    ``(batch, channels, height, width)``.

    The weights are drawn with He initialisation, normal with standard
    deviation :math:`\sqrt{2 / n_\text{in}}`, where a kernel sees
    :math:`n_\text{in} = C_\text{in} k_h k_w` inputs; the bias starts at zero.

    Parameters
    ----------
    in_channels, out_channels
        Channels of the input and of the output.
    kernel_size
        An int for a square kernel, or a pair (height, width).
    stride, padding
        As in :class:`~autodiff.ops.Conv2d`: an int or a pair.
    seed
        An int or a :class:`numpy.random.Generator` for reproducible weights;
        ``None`` draws fresh ones each time.
    dtype
        The floating-point type of the parameters.

    Attributes
    ----------
    weight : Parameter
        Shape ``(out_channels, in_channels, kh, kw)``.
    bias : Parameter
        Shape ``(out_channels,)``.

    Examples
    --------
    >>> layer = Conv2d(1, 4, kernel_size=3, padding=1, seed=0)
    >>> layer.weight.shape, layer.bias.shape
    ((4, 1, 3, 3), (4,))
    >>> layer(np.zeros((2, 1, 28, 28), dtype=np.float32)).shape
    (2, 4, 28, 28)
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        *,
        seed: int | np.random.Generator | None = None,
        dtype: DTypeLike = np.float32,
    ) -> None:
        self.in_channels = _positive_int(in_channels, "in_channels", "Conv2d")
        self.out_channels = _positive_int(out_channels, "out_channels", "Conv2d")
        self.kernel_size = ops.check_pair(kernel_size, "kernel_size", "Conv2d", 1)
        self.stride = ops.check_pair(stride, "stride", "Conv2d", 1)
        self.padding = ops.check_pair(padding, "padding", "Conv2d", 0)
        dtype = _float_dtype(dtype, "Conv2d")
        fan_in = self.in_channels * self.kernel_size[0] * self.kernel_size[1]
        shape = (self.out_channels, self.in_channels, *self.kernel_size)
        weight = make_rng(seed).normal(0.0, np.sqrt(2.0 / fan_in), size=shape)
        self.weight = Parameter(weight.astype(dtype))
        self.bias = Parameter(np.zeros(self.out_channels, dtype=dtype))

    def forward(self, x: Any) -> Variable:
        z = ops.Conv2d(x, self.weight, stride=self.stride, padding=self.padding)
        return z + self.bias.reshape(-1, 1, 1)  # one bias per channel, broadcast over the image

    def __repr__(self) -> str:
        return (
            f"Conv2d({self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}, dtype={self.weight.dtype})"
        )


class MaxPool2d(Module):
    """The :class:`~autodiff.ops.MaxPool2d` operation as a layer.

    Parameters
    ----------
    kernel_size
        The window's size, an int or a pair.
    stride
        How far the window moves; by default ``kernel_size``, so that the
        windows tile the image.

    Examples
    --------
    >>> MaxPool2d(2)(np.arange(16.0).reshape(1, 1, 4, 4)).value
    array([[[[ 5.,  7.],
             [13., 15.]]]])
    """

    def __init__(
        self, kernel_size: int | tuple[int, int], stride: int | tuple[int, int] | None = None
    ) -> None:
        self.kernel_size = ops.check_pair(kernel_size, "kernel_size", "MaxPool2d", 1)
        self.stride = self.kernel_size if stride is None else ops.check_pair(stride, "stride", "MaxPool2d", 1)

    def forward(self, x: Any) -> Variable:
        return ops.MaxPool2d(x, kernel_size=self.kernel_size, stride=self.stride)

    def __repr__(self) -> str:
        return f"MaxPool2d(kernel_size={self.kernel_size}, stride={self.stride})"


class Flatten(Module):
    """Flatten every axis but the first: ``(batch, ...)`` becomes ``(batch, features)``.

    It connects convolutional layers to :class:`Linear` ones.

    Examples
    --------
    >>> Flatten()(np.zeros((2, 3, 4, 4))).shape
    (2, 48)
    """

    def forward(self, x: Any) -> Variable:
        return ops.Reshape(x, shape=(x.shape[0], -1))


class Sequential(Module):
    """Apply modules one after the other; the output of one is the input of the next.

    Parameters
    ----------
    *layers
        Modules, or any callables mapping a Variable to a Variable. Their
        parameters are named ``layers.<index>.<name>``.

    Examples
    --------
    >>> model = Sequential(Linear(4, 8, seed=0), ReLU(), Linear(8, 3, seed=1))
    >>> model(np.zeros((2, 4), dtype=np.float32)).shape
    (2, 3)
    >>> [name for name, _ in model.named_parameters()]
    ['layers.0.weight', 'layers.0.bias', 'layers.2.weight', 'layers.2.bias']
    """

    def __init__(self, *layers: Any) -> None:
        for index, layer in enumerate(layers):
            if not callable(layer):
                raise TypeError(
                    f"Sequential: layer {index} is a {type(layer).__name__}, which "
                    "cannot be called. Pass layer objects such as Linear(784, 10) "
                    "or ReLU(), not classes' results or arrays."
                )
        self.layers = list(layers)

    def forward(self, x: Any) -> Any:
        for layer in self.layers:
            x = layer(x)
        return x

    def __getitem__(self, index: int) -> Any:
        return self.layers[index]

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.layers)

    def __repr__(self) -> str:
        inner = ",\n".join(f"    {layer!r}" for layer in self.layers)
        return f"Sequential(\n{inner}\n)"


class ReLU(Module):
    """The :class:`~autodiff.ops.ReLU` operation as a layer: ``max(x, 0)``.

    Examples
    --------
    >>> ReLU()(np.array([-1.0, 2.0])).value
    array([0., 2.])
    """

    def forward(self, x: Any) -> Variable:
        return ops.ReLU(x)


class Sigmoid(Module):
    """The :class:`~autodiff.ops.Sigmoid` operation as a layer.

    Examples
    --------
    >>> Sigmoid()(np.array([0.0])).value
    array([0.5])
    """

    def forward(self, x: Any) -> Variable:
        return ops.Sigmoid(x)


class Tanh(Module):
    """The :class:`~autodiff.ops.Tanh` operation as a layer.

    Examples
    --------
    >>> Tanh()(np.array([0.0])).value
    array([0.])
    """

    def forward(self, x: Any) -> Variable:
        return ops.Tanh(x)


def mlp(*sizes: int, seed: int | np.random.Generator | None = 0,
        dtype: DTypeLike = np.float32) -> Sequential:
    """A multilayer perceptron: Linear layers of the given sizes with ReLU between.

    ``mlp(784, 256, 10)`` is the model of the MNIST chapter:
    ``Linear(784, 256)``, ``ReLU()``, ``Linear(256, 10)``, He-initialised.
    The output layer has no activation: it returns logits, for
    :func:`~autodiff.nn.cross_entropy`.

    Examples
    --------
    >>> mlp(784, 256, 10)
    Sequential(
        Linear(784, 256, init='he', dtype=float32),
        ReLU(),
        Linear(256, 10, init='he', dtype=float32)
    )
    """
    if len(sizes) < 2:
        raise ValueError(f"mlp: give at least two sizes (inputs, outputs), got {sizes}.")
    rng = make_rng(seed)
    layers: list[Module] = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        layers += [Linear(fan_in, fan_out, seed=rng, dtype=dtype), ReLU()]
    return Sequential(*layers[:-1])  # no ReLU after the output layer
