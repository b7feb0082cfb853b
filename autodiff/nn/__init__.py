"""Neural networks on the engine: layers, losses, optimisers, data and training.

>>> import numpy as np
>>> from autodiff import backprop
>>> from autodiff.nn import Linear, ReLU, Sequential, SGD, cross_entropy
>>> model = Sequential(Linear(4, 8, seed=0), ReLU(), Linear(8, 3, seed=1))
>>> optimizer = SGD(model.parameters(), learning_rate=0.1)
>>> images = np.ones((2, 4), dtype=np.float32)
>>> loss = cross_entropy(model(images), np.array([0, 2]))
>>> optimizer.step(backprop(loss, optimizer.parameters))
>>> loss.dtype
dtype('float32')
"""

from autodiff.nn.data import (
    ENVIRONMENT_VARIABLE,
    MNIST,
    MNIST_CHECKSUMS,
    MNIST_URL,
    DownloadError,
    IDXError,
    batches,
    default_folder,
    download,
    load_mnist,
    read_idx,
)
from autodiff.nn.layers import (
    Conv2d,
    Flatten,
    Linear,
    MaxPool2d,
    Module,
    ReLU,
    Sequential,
    Sigmoid,
    Tanh,
    make_rng,
    mlp,
)
from autodiff.nn.losses import accuracy, cross_entropy, mse
from autodiff.nn.optim import SGD, Adam, Momentum, Optimizer
from autodiff.nn.serialization import (
    ParameterMismatchError,
    load_parameters,
    named_parameters,
    save_parameters,
)
from autodiff.nn.train import History, evaluate, fit, predict, train_step

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
    "cross_entropy",
    "mse",
    "accuracy",
    "Optimizer",
    "SGD",
    "Momentum",
    "Adam",
    "MNIST",
    "MNIST_URL",
    "MNIST_CHECKSUMS",
    "ENVIRONMENT_VARIABLE",
    "IDXError",
    "DownloadError",
    "default_folder",
    "read_idx",
    "download",
    "load_mnist",
    "batches",
    "History",
    "train_step",
    "predict",
    "evaluate",
    "fit",
    "ParameterMismatchError",
    "named_parameters",
    "save_parameters",
    "load_parameters",
]
