"""Benchmark: Conv2d on LeNet-sized layers, and one epoch of the convolutions chapter's network.

Run from the repository root:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python bench/bench_conv.py

It prints tables and asserts nothing.

1. Layers. Forward and backward pass (the gradients of the input and of the
   kernels) of one convolution, on a batch of 64 float32 images: 1 -> 8
   channels on 28x28 images and 8 -> 16 channels on 14x14 ones, each with
   5x5 and 3x3 kernels, stride 1 and the padding that keeps the size.
   Versions:

   - ``autodiff``: ``Conv2d`` and ``backprop(z, [x, w], output_gradient=...)``;
   - ``numpy``: the same algorithm written directly in NumPy, the floor: the
     windows by ``sliding_window_view``, one copy into columns, batched
     matrix products, and the columns' gradient added back onto the image
     with one strided slice per kernel offset;
   - ``PyTorch`` (if installed): ``torch.nn.functional.conv2d`` and
     ``backward``, with one thread.

   The versions take turns, one call each per round, and each reports its
   best round; the ratios are against the NumPy floor and against PyTorch,
   measured in the same run. Memory: the ``tracemalloc`` peak (NumPy reports
   its arrays to it) of one forward pass and of one forward and backward
   pass of ``autodiff``, above what was allocated before, next to the size
   of the columns (the unfolded input) and of the output. "copies" is the
   forward peak less the output, in units of the columns: how many copies of
   the unfolded input the forward pass holds at once.
   Targets (issue 11): at most 1.3x the floor and 2x PyTorch; at most one
   copy of the unfolded input per layer.

2. One epoch of the chapter's network (conv 1->16 5x5, ReLU, max-pool 2,
   conv 16->32 3x3, ReLU, max-pool 2, dense 1568->128, ReLU, dense 128->10)
   on 60,000 random
   MNIST-shaped images, minibatches of 64, softmax cross-entropy and Adam
   (learning rate 2e-3). ``autodiff`` and, if installed, the same network in
   PyTorch take turns every 20 minibatches, as in ``bench_mnist.py``; an
   epoch's time is the sum of its turns. ``--epoch-images`` shortens it.

BLAS runs with one thread by default (``--blas-threads``): PyTorch's thread
pool and BLAS's spin against each other in one process, and on a busy machine
one thread gives steadier figures. PyTorch joins only with one thread.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import tracemalloc
from collections.abc import Callable

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from autodiff import Conv2d, Parameter, backprop
from autodiff.nn import Adam, cross_entropy
from autodiff.nn import Conv2d as Conv2dLayer
from autodiff.nn import Flatten, Linear, MaxPool2d, ReLU, Sequential, make_rng

BATCH_SIZE = 64
#: (name, in_channels, out_channels, kernel size, image size)
LAYERS = [
    ("1->8, 5x5, 28x28", 1, 8, 5, 28),
    ("1->8, 3x3, 28x28", 1, 8, 3, 28),
    ("8->16, 5x5, 14x14", 8, 16, 5, 14),
    ("8->16, 3x3, 14x14", 8, 16, 3, 14),
]
CHUNK = 20  # minibatches per turn in the epoch benchmark

Step = Callable[[], object]


# ------------------------------------------------------------------- the NumPy floor


def im2col(x: np.ndarray, kernel: int, padding: int) -> np.ndarray:
    """The windows of x (N, C, H, W) as columns (N, C * k * k, H' W'): one copy."""
    if padding:
        x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    windows = sliding_window_view(x, (kernel, kernel), axis=(2, 3))
    n, c, out_height, out_width = windows.shape[:4]
    return windows.transpose(0, 1, 4, 5, 2, 3).reshape(n, c * kernel * kernel, -1)


def col2im(columns: np.ndarray, shape: tuple[int, ...], kernel: int, padding: int) -> np.ndarray:
    """Add the columns back onto an image of ``shape``: one strided slice per kernel offset."""
    n, c, height, width = shape
    out_height, out_width = height + 2 * padding - kernel + 1, width + 2 * padding - kernel + 1
    columns = columns.reshape(n, c, kernel, kernel, out_height, out_width)
    image = np.zeros((n, c, height + 2 * padding, width + 2 * padding), columns.dtype)
    for a in range(kernel):
        for b in range(kernel):
            image[:, :, a : a + out_height, b : b + out_width] += columns[:, :, a, b]
    return image[:, :, padding : padding + height, padding : padding + width]


def numpy_conv_step(x: np.ndarray, w: np.ndarray, gz: np.ndarray, padding: int) -> tuple:
    """Forward and backward pass of a stride-1 convolution, by hand."""
    n, (out_channels, _, kernel, _) = len(x), w.shape
    columns = im2col(x, kernel, padding)
    kernels = w.reshape(out_channels, -1)
    z = (kernels @ columns).reshape(gz.shape)
    gz_rows = gz.reshape(n, out_channels, -1)
    gw = (columns @ gz_rows.swapaxes(1, 2)).sum(axis=0).T.reshape(w.shape)
    gx = col2im(kernels.T @ gz_rows, x.shape, kernel, padding)
    return z, gx, gw


# ----------------------------------------------------------------------- layers


def layer_versions(in_channels: int, out_channels: int, kernel: int, size: int,
                   with_torch: bool) -> tuple[dict[str, Step], dict[str, float]]:
    """The versions of one layer's step, checked against each other, and the layer's sizes."""
    rng = np.random.default_rng(0)
    padding = kernel // 2
    x = rng.random((BATCH_SIZE, in_channels, size, size), dtype=np.float32)
    w = rng.normal(size=(out_channels, in_channels, kernel, kernel)).astype(np.float32)
    gz = rng.normal(size=(BATCH_SIZE, out_channels, size, size)).astype(np.float32)
    x_var, w_var = Parameter(x), Parameter(w)

    def autodiff_step() -> tuple:
        z = Conv2d(x_var, w_var, padding=padding)
        gradients = backprop(z, [x_var, w_var], output_gradient=gz)
        return z.value, gradients[x_var], gradients[w_var]

    steps: dict[str, Step] = {
        "numpy": lambda: numpy_conv_step(x, w, gz, padding),
        "autodiff": autodiff_step,
    }
    if with_torch:
        import torch

        tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
        tgz = torch.tensor(gz)

        def torch_step() -> tuple:
            tx.grad = tw.grad = None
            z = torch.nn.functional.conv2d(tx, tw, padding=padding)
            z.backward(tgz)
            return z.detach().numpy(), tx.grad.numpy(), tw.grad.numpy()

        steps["PyTorch"] = torch_step
    reference = steps["numpy"]()
    for name, step in steps.items():  # the same numbers, or the timing means nothing
        for mine, theirs in zip(step(), reference):
            np.testing.assert_allclose(mine, theirs, rtol=2e-3, atol=2e-3, err_msg=name)
    sizes = {"columns": im2col(x, kernel, padding).nbytes, "output": gz.nbytes}
    tracemalloc.start()
    z = Conv2d(x_var, w_var, padding=padding)
    sizes["forward peak"] = tracemalloc.get_traced_memory()[1]
    backprop(z, [x_var, w_var], output_gradient=gz)
    sizes["forward+backward peak"] = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return steps, sizes


def best_times(steps: dict[str, Step], rounds: int) -> dict[str, float]:
    """Each step once per round, in a rotating order; the best round of each."""
    names = list(steps)
    best = dict.fromkeys(names, np.inf)
    for number in range(rounds):
        for name in names[number % len(names):] + names[: number % len(names)]:
            start = time.perf_counter()
            steps[name]()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def bench_layers(rounds: int, with_torch: bool) -> None:
    print(f"1. Conv2d forward + backward (input and kernel gradients), batch {BATCH_SIZE}, "
          f"float32, best of {rounds} rounds")
    header = f"{'layer':19}{'numpy ms':>10}{'autodiff ms':>12}{'/ numpy':>9}"
    if with_torch:
        header += f"{'PyTorch ms':>11}{'/ PyTorch':>10}"
    print(header + f"{'columns MB':>11}{'output MB':>10}{'peak fwd MB':>12}"
          f"{'fwd+bwd MB':>11}{'copies':>7}")
    for name, in_channels, out_channels, kernel, size in LAYERS:
        steps, sizes = layer_versions(in_channels, out_channels, kernel, size, with_torch)
        best = best_times(steps, rounds)
        line = (f"{name:19}{best['numpy'] * 1e3:>10.2f}{best['autodiff'] * 1e3:>12.2f}"
                f"{best['autodiff'] / best['numpy']:>9.2f}")
        if with_torch:
            line += f"{best['PyTorch'] * 1e3:>11.2f}{best['autodiff'] / best['PyTorch']:>10.2f}"
        megabytes = {key: value / 2**20 for key, value in sizes.items()}
        copies = (sizes["forward peak"] - sizes["output"]) / sizes["columns"]
        line += (f"{megabytes['columns']:>11.2f}{megabytes['output']:>10.2f}"
                 f"{megabytes['forward peak']:>12.2f}{megabytes['forward+backward peak']:>11.2f}"
                 f"{copies:>7.2f}")
        print(line)
    print("targets: autodiff <= 1.3 x numpy and <= 2 x PyTorch, copies <= 1. The backward "
          "pass adds the columns' gradient, of the columns' size, to add back onto the image.")


# ------------------------------------------------------------------------ one epoch


def make_autodiff_step() -> Callable[[np.ndarray, np.ndarray], None]:
    rng = make_rng(0)
    model = Sequential(
        Conv2dLayer(1, 16, 5, padding=2, seed=rng), ReLU(), MaxPool2d(2),
        Conv2dLayer(16, 32, 3, padding=1, seed=rng), ReLU(), MaxPool2d(2),
        Flatten(), Linear(32 * 7 * 7, 128, seed=rng), ReLU(), Linear(128, 10, seed=rng),
    )
    optimizer = Adam(model.parameters(), learning_rate=2e-3)

    def step(x: np.ndarray, y: np.ndarray) -> None:
        loss = cross_entropy(model(x), y)
        optimizer.step(backprop(loss, optimizer.parameters))
    return step


def make_torch_step() -> Callable[[np.ndarray, np.ndarray], None]:
    import torch

    torch.manual_seed(0)
    nn = torch.nn
    model = nn.Sequential(
        nn.Conv2d(1, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10),
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)

    def step(x: np.ndarray, y: np.ndarray) -> None:
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(torch.from_numpy(x)), torch.from_numpy(y)).backward()
        optimizer.step()
    return step


def bench_epoch(images: int, with_torch: bool) -> None:
    rng = np.random.default_rng(0)
    x = rng.random((images, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, size=images)
    steps = {"autodiff": make_autodiff_step()}
    if with_torch:
        steps["PyTorch"] = make_torch_step()
    names = list(steps)
    starts = range(0, images, BATCH_SIZE)
    for step in steps.values():  # warm up: first calls allocate and load code
        step(x[:BATCH_SIZE], y[:BATCH_SIZE])
    total = dict.fromkeys(names, 0.0)
    order = rng.permutation(images)
    for chunk, first in enumerate(range(0, len(starts), CHUNK)):
        for name in names[chunk % len(names):] + names[: chunk % len(names)]:
            start = time.perf_counter()
            for batch_start in starts[first : first + CHUNK]:
                index = order[batch_start : batch_start + BATCH_SIZE]
                steps[name](x[index], y[index])
            total[name] += time.perf_counter() - start
    print(f"\n2. One epoch of the chapter's network on {images:,} random MNIST-shaped images, "
          f"batch {BATCH_SIZE}, Adam, in turns of {CHUNK} minibatches")
    for name in names:
        ratio = f", {total[name] / total['PyTorch']:.2f} x PyTorch" if with_torch else ""
        print(f"{name:10}{total[name]:8.1f} s per epoch, "
              f"{total[name] / len(starts) * 1e3:6.1f} ms per step{ratio}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30, help="rounds of the layer benchmark")
    parser.add_argument("--epoch-images", type=int, default=60_000,
                        help="images in the epoch benchmark (0 skips it)")
    parser.add_argument("--blas-threads", type=int, default=1,
                        help="OPENBLAS_NUM_THREADS (default 1; PyTorch is compared only with 1)")
    arguments = parser.parse_args()
    threads = str(arguments.blas_threads)
    if os.environ.get("OPENBLAS_NUM_THREADS") != threads:
        # BLAS reads the variable when NumPy is imported: start again with it set.
        environment = dict(os.environ, OPENBLAS_NUM_THREADS=threads, OMP_NUM_THREADS=threads)
        os.execve(sys.executable, [sys.executable, *sys.argv], environment)
    try:
        import torch
    except ImportError:
        with_torch = False
        print("PyTorch: not installed, not compared")
    else:
        with_torch = arguments.blas_threads == 1
        torch.set_num_threads(1)
        print(f"PyTorch {torch.__version__}: " + ("compared, one thread" if with_torch else
              "not compared (it is with --blas-threads 1)"))
    print(f"NumPy {np.__version__}, BLAS threads {threads}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f} at the start\n")
    bench_layers(arguments.rounds, with_torch)
    if arguments.epoch_images:
        bench_epoch(arguments.epoch_images, with_torch)


if __name__ == "__main__":
    main()
