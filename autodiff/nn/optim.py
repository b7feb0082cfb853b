r"""Optimisers: update parameters from the gradients that ``backprop`` returns.

Every optimiser is built with the parameters it updates and has one method,
:meth:`Optimizer.step`, which takes the mapping
``{parameter: gradient}`` returned by :func:`~autodiff.core.backprop` and
changes each ``parameter.value`` in place. A training step is therefore::

    loss = cross_entropy(model(images), labels)
    optimizer.step(backprop(loss, optimizer.parameters))

Passing ``optimizer.parameters`` to ``backprop`` asks for those gradients
only, which saves the work (and memory) of every other gradient.

The updates are written as their formulas. They change the parameters'
arrays (and the optimisers' running statistics) in place, and make a few
temporary arrays along the way: writing every step into buffers kept from
one step to the next made an MNIST epoch of ``bench/bench_mnist.py`` no
faster (0.2 %, measured in one run taking turns), so the optimisers read as
the formulas do.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from autodiff.core import Parameter, Variable

__all__ = ["Optimizer", "SGD", "Momentum", "Adam"]


class Optimizer:
    """Base class: holds the parameters and checks the gradients.

    Parameters
    ----------
    parameters
        The parameters to update: a list of :class:`~autodiff.core.Parameter`,
        or a :class:`~autodiff.nn.Module` (its ``parameters()`` are used).
    learning_rate
        The step size; a positive number.

    Attributes
    ----------
    learning_rate
        The step size of the next :meth:`step`. Assign a new value between
        steps to follow a schedule, for example a smaller step for the last
        epoch of a training run.

    Examples
    --------
    A subclass implements :meth:`step`; the constructor has already checked
    the parameters and the learning rate.

    >>> from autodiff import Parameter, backprop
    >>> class SignSGD(Optimizer):   # steps of the same size, against the sign
    ...     def step(self, gradients):
    ...         for parameter in self.parameters:
    ...             parameter.value -= self.learning_rate * np.sign(gradients[parameter])
    >>> w = Parameter([3.0, -0.5])
    >>> optimizer = SignSGD([w], learning_rate=0.1)
    >>> optimizer.step(backprop((w * w).sum(), [w]))
    >>> w.value
    array([ 2.9, -0.4])
    >>> SignSGD([w], learning_rate=0)
    Traceback (most recent call last):
    ...
    ValueError: SignSGD: learning_rate must be positive, got 0.0.
    """

    def __init__(self, parameters: Any, learning_rate: float) -> None:
        if hasattr(parameters, "parameters") and callable(parameters.parameters):
            parameters = parameters.parameters()
        if isinstance(parameters, Variable) or not isinstance(parameters, Iterable):
            raise TypeError(
                f"{type(self).__name__}: parameters must be a list of Parameters or a "
                f"Module, but got {type(parameters).__name__}. Pass model.parameters()."
            )
        self.parameters: list[Parameter] = list(parameters)
        if not self.parameters:
            raise ValueError(f"{type(self).__name__}: got an empty list of parameters.")
        seen: set[int] = set()
        for index, parameter in enumerate(self.parameters):
            if not isinstance(parameter, Parameter):
                raise TypeError(
                    f"{type(self).__name__}: parameter {index} is a "
                    f"{type(parameter).__name__}, not a Parameter. Only Parameters "
                    "are learned; wrap values in Parameter(...)."
                )
            if parameter.value.dtype.kind not in "fc":
                raise TypeError(
                    f"{type(self).__name__}: parameter {index} has dtype "
                    f"{parameter.value.dtype}; learnable values must be floating point."
                )
            if id(parameter) in seen:
                raise ValueError(
                    f"{type(self).__name__}: parameter {index} appears twice in the "
                    "list; it would be updated twice per step."
                )
            seen.add(id(parameter))
        learning_rate = float(learning_rate)
        if not learning_rate > 0:
            raise ValueError(
                f"{type(self).__name__}: learning_rate must be positive, got {learning_rate}."
            )
        self.learning_rate = learning_rate

    def _gradients(self, gradients: Mapping[Variable, Any]) -> list[np.ndarray]:
        """The gradient of each parameter, in order, after checking it."""
        result = []
        for parameter in self.parameters:
            gradient = gradients.get(parameter)
            if type(gradient) is not np.ndarray or gradient.shape != parameter.value.shape:
                gradient = self._checked(parameter, gradient)
            result.append(gradient)
        return result

    def _checked(self, parameter: Parameter, gradient: Any) -> np.ndarray:
        """A gradient that is missing, not an array or of the wrong shape."""
        index = self.parameters.index(parameter)
        if gradient is None:
            raise KeyError(
                f"{type(self).__name__}.step: the gradients have no entry for "
                f"parameter {index} (shape {parameter.shape}). Compute them with "
                "backprop(loss, optimizer.parameters), which returns one "
                "gradient for every parameter (zero if the loss does not use it)."
            )
        array: np.ndarray = np.asarray(gradient)
        if array.shape != parameter.shape:
            raise ValueError(
                f"{type(self).__name__}.step: the gradient of parameter {index} "
                f"has shape {array.shape}, but the parameter has shape "
                f"{parameter.shape}."
            )
        return array

    def step(self, gradients: Mapping[Variable, Any]) -> None:
        """Update every parameter in place from ``gradients``."""
        raise NotImplementedError


class SGD(Optimizer):
    r"""Stochastic gradient descent: :math:`\theta \leftarrow \theta - \eta\, g`.

    Examples
    --------
    >>> from autodiff import backprop
    >>> w = Parameter([1.0, -2.0])
    >>> optimizer = SGD([w], learning_rate=0.1)
    >>> optimizer.step(backprop((w * w).sum(), [w]))   # gradient 2 w
    >>> w.value
    array([ 0.8, -1.6])
    """

    def step(self, gradients: Mapping[Variable, Any]) -> None:
        """Update every parameter in place from ``gradients``."""
        for parameter, gradient in zip(self.parameters, self._gradients(gradients)):
            parameter.value -= self.learning_rate * gradient


class Momentum(Optimizer):
    r"""SGD with momentum (the "heavy ball"), as PyTorch defines it.

    .. math::
        v \leftarrow \mu\, v + g, \qquad \theta \leftarrow \theta - \eta\, v .

    The velocity :math:`v` starts at 0 and averages recent gradients, which
    damps zig-zagging across narrow valleys.

    Parameters
    ----------
    parameters, learning_rate
        As for :class:`Optimizer`.
    momentum
        :math:`\mu`, in ``[0, 1)``; 0 is plain SGD.

    Examples
    --------
    >>> from autodiff import backprop
    >>> w = Parameter([1.0])
    >>> optimizer = Momentum([w], learning_rate=0.1, momentum=0.9)
    >>> for _ in range(2):
    ...     optimizer.step(backprop((w * w).sum(), [w]))
    >>> w.value.round(4)   # 1 - 0.2 = 0.8, then 0.8 - 0.1 * (0.9 * 2 + 1.6)
    array([0.46])
    """

    def __init__(self, parameters: Any, learning_rate: float, momentum: float = 0.9) -> None:
        super().__init__(parameters, learning_rate)
        if not 0 <= momentum < 1:
            raise ValueError(f"Momentum: momentum must lie in [0, 1), got {momentum}.")
        self.momentum = float(momentum)
        self.velocities = [np.zeros_like(p.value) for p in self.parameters]

    def step(self, gradients: Mapping[Variable, Any]) -> None:
        """Update every parameter in place from ``gradients``."""
        for parameter, gradient, velocity in zip(
            self.parameters, self._gradients(gradients), self.velocities
        ):
            velocity *= self.momentum  # v <- mu v + g, in the velocity's own array
            velocity += gradient
            parameter.value -= self.learning_rate * velocity


class Adam(Optimizer):
    r"""Adam (Kingma and Ba, 2015): steps scaled by running gradient statistics.

    With :math:`t` the number of the step,

    .. math::
        m &\leftarrow \beta_1 m + (1 - \beta_1)\, g, \qquad
        v \leftarrow \beta_2 v + (1 - \beta_2)\, g^2, \\
        \theta &\leftarrow \theta - \eta\,
            \frac{m / (1 - \beta_1^t)}{\sqrt{v / (1 - \beta_2^t)} + \epsilon} .

    The divisions by :math:`1 - \beta^t` undo the bias of starting the
    averages at 0. Every parameter moves by about :math:`\eta` per step,
    whatever the scale of its gradient.

    Examples
    --------
    >>> from autodiff import backprop
    >>> w = Parameter([1.0, -100.0])
    >>> optimizer = Adam([w], learning_rate=0.1)
    >>> optimizer.step(backprop((w * w).sum(), [w]))
    >>> w.value   # both move by 0.1, whatever their gradient
    array([  0.9, -99.9])
    """

    def __init__(
        self,
        parameters: Any,
        learning_rate: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        super().__init__(parameters, learning_rate)
        beta1, beta2 = betas
        if not (0 <= beta1 < 1 and 0 <= beta2 < 1):
            raise ValueError(f"Adam: betas must lie in [0, 1), got {betas}.")
        self.beta1, self.beta2, self.eps = float(beta1), float(beta2), float(eps)
        self.steps = 0
        self.means = [np.zeros_like(p.value) for p in self.parameters]
        self.variances = [np.zeros_like(p.value) for p in self.parameters]

    def step(self, gradients: Mapping[Variable, Any]) -> None:
        """Update every parameter in place from ``gradients``."""
        self.steps += 1
        t, beta1, beta2 = self.steps, self.beta1, self.beta2
        for parameter, g, m, v in zip(
            self.parameters, self._gradients(gradients), self.means, self.variances
        ):
            m[...] = beta1 * m + (1 - beta1) * g  # the running statistics keep their arrays
            v[...] = beta2 * v + (1 - beta2) * g * g
            m_hat = m / (1 - beta1**t)
            v_hat = v / (1 - beta2**t)
            parameter.value -= self.learning_rate * m_hat / (np.sqrt(v_hat) + self.eps)
