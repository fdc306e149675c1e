"""certify.rnn: outputs, exact gradients (reverse mode), forward mode, sensitivities.

Cross-checks: central finite differences, the sympy-derived forward-mode
sensitivities (``sensitivities``), the derived ``jvp`` template, and torch
autograd of an independently written torch model.  Backends: NumPy,
array_api_strict, torch (CPU; CUDA under ``gpu``).
"""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest

from certify import rnn
from certify.cases.init import symmetric_init
from tests.gpu_util import cupy_or_skip

ACTS = ("tanh", "logistic", "gaussian")
LOSSES = ("all-steps", "final-step")


def problem(seed=0, m=6, n=5, T=7, d=3, alpha=0.9):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, T, d))
    X /= np.linalg.norm(X, axis=-1, keepdims=True) * rng.uniform(1.0, 2.0, (n, T, 1))
    Y = rng.standard_normal((n, T))
    w = rng.uniform(-alpha, alpha, m)
    U = rng.standard_normal((m, d))
    c = rng.choice([-1.0, 1.0], m)
    return w, U, c, X, Y


def rel(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def fd_grad(w, U, c, X, Y, act, loss, eps=1e-6):
    """Central differences coordinate by coordinate (small problems)."""
    gw = np.zeros_like(w)
    gU = np.zeros_like(U)
    for i in range(w.shape[0]):
        e = np.zeros_like(w)
        e[i] = eps
        gw[i] = (rnn.loss(w + e, U, c, X, Y, act, loss)
                 - rnn.loss(w - e, U, c, X, Y, act, loss)) / (2 * eps)
        for k in range(U.shape[1]):
            E = np.zeros_like(U)
            E[i, k] = eps
            gU[i, k] = (rnn.loss(w, U + E, c, X, Y, act, loss)
                        - rnn.loss(w, U - E, c, X, Y, act, loss)) / (2 * eps)
    return gw, gU


# --------------------------------------------------------------------------
# gradient cross-checks


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("act", ACTS)
def test_gradient_matches_central_differences(act, loss):
    w, U, c, X, Y = problem(1)
    R, gw, gU = rnn.loss_and_grad(w, U, c, X, Y, act, loss)
    fw, fU = fd_grad(w, U, c, X, Y, act, loss)
    scale = max(np.max(np.abs(gw)), np.max(np.abs(gU)))
    # central differences: O(eps²) truncation + O(u/eps) rounding ~ 1e-10 here
    assert np.max(np.abs(gw - fw)) <= 1e-8 * scale
    assert np.max(np.abs(gU - fU)) <= 1e-8 * scale


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("act", ACTS)
def test_gradient_matches_symbolic_sensitivities(act, loss):
    """∇R̂ = Σ ω r c g_t/√m with g_t from the derived forward-mode templates."""
    w, U, c, X, Y = problem(2)
    m = w.shape[0]
    n, T = Y.shape
    R, gw, gU = rnn.loss_and_grad(w, U, c, X, Y, act, loss)
    g, _ = rnn.sensitivities(w, U, X, act)
    r = rnn.forward(w, U, c, X, act) - Y
    omega = np.full((n, T), 1 / (n * T)) if loss == "all-steps" else \
        np.concatenate([np.zeros((n, T - 1)), np.full((n, 1), 1 / n)], axis=1)
    ref = np.einsum("nt,mntk->mk", omega * r, g) * c[:, None] / math.sqrt(m)
    assert rel(gw, ref[:, 0]) < 1e-12
    assert rel(gU, ref[:, 1:]) < 1e-12
    assert R == pytest.approx(float(np.sum(omega * r * r)) / 2, rel=1e-13)


def _torch_model(torch, w, U, c, X, Y, act, loss):
    """An independent torch implementation of THEORY §1 (not sharing any code)."""
    w = torch.tensor(w, requires_grad=True)
    U = torch.tensor(U, requires_grad=True)
    c, X, Y = torch.tensor(c), torch.tensor(X), torch.tensor(Y)
    sig = {"tanh": torch.tanh, "logistic": torch.sigmoid,
           "gaussian": lambda z: torch.exp(-0.5 * z * z)}[act]
    m = w.shape[0]
    h = torch.zeros(X.shape[0], m, dtype=torch.float64)
    outs = []
    for t in range(X.shape[1]):
        h = sig(w * h + X[:, t, :] @ U.T)
        outs.append(h @ c / math.sqrt(m))
    r = torch.stack(outs, 1) - Y
    R = 0.5 * (r**2).mean() if loss == "all-steps" else 0.5 * (r[:, -1] ** 2).mean()
    R.backward()
    return R.item(), w.grad.numpy(), U.grad.numpy()


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("act", ACTS)
def test_gradient_matches_torch_autograd(act, loss):
    torch = pytest.importorskip("torch")
    w, U, c, X, Y = problem(3, m=10, n=7, T=9, d=4)
    R, gw, gU = rnn.loss_and_grad(w, U, c, X, Y, act, loss)
    R2, gw2, gU2 = _torch_model(torch, w, U, c, X, Y, act, loss)
    assert R == pytest.approx(R2, rel=1e-12)
    assert rel(gw, gw2) < 1e-8
    assert rel(gU, gU2) < 1e-8


def test_gradient_many_blocks_and_threads_bitwise_identical(monkeypatch):
    """The (neuron × sample) tile partition is independent of the thread count."""
    monkeypatch.setattr(rnn, "_BLOCK_ELEMS", 64)  # force many tiles
    monkeypatch.setattr(rnn, "_TILE_SAMPLES", 3)  # 8 samples in chunks of 3, 3, 2
    monkeypatch.setattr(rnn, "_MATMUL_MNK", 16)  # every matmul in chunks
    w, U, c, X, Y = problem(4, m=40, n=8, T=6, d=3)
    assert len({(j0, j1) for _, _, j0, j1 in rnn._blocks(np, 40, 8)}) == 3
    R1, gw1, gU1 = rnn.loss_and_grad(w, U, c, X, Y, threads=1)
    R2, gw2, gU2 = rnn.loss_and_grad(w, U, c, X, Y, threads=3)
    assert R1 == R2
    assert np.array_equal(gw1, gw2) and np.array_equal(gU1, gU2)
    monkeypatch.setattr(rnn, "_BLOCK_ELEMS", 1 << 15)
    monkeypatch.setattr(rnn, "_TILE_SAMPLES", 256)
    monkeypatch.setattr(rnn, "_MATMUL_MNK", 1 << 18)
    R3, gw3, gU3 = rnn.loss_and_grad(w, U, c, X, Y)
    assert R3 == pytest.approx(R1, rel=1e-13)
    assert rel(gw3, gw1) < 1e-12 and rel(gU3, gU1) < 1e-12


# --------------------------------------------------------------------------
# forward mode, sensitivities


@pytest.mark.parametrize("act", ACTS)
def test_jvp_matches_sensitivities(act):
    w, U, c, X, Y = problem(5)
    rng = np.random.default_rng(0)
    vw, vU = rng.standard_normal(w.shape), rng.standard_normal(U.shape)
    J = rnn.jvp(w, U, X, vw, vU, act)
    g, _ = rnn.sensitivities(w, U, X, act)
    ref = np.einsum("mntk,mk->mnt", g, np.concatenate([vw[:, None], vU], axis=1))
    assert J.shape == (w.shape[0], X.shape[0], X.shape[1])
    assert rel(J, ref) < 1e-13


@pytest.mark.parametrize("act", ACTS)
def test_sensitivity_hessian_matches_differences_of_g(act):
    w, U, c, X, Y = problem(6, m=4, n=3, T=6, d=2)
    rng = np.random.default_rng(1)
    vw, vU = rng.standard_normal(w.shape), rng.standard_normal(U.shape)
    g, H = rnn.sensitivities(w, U, X, act)
    assert g.shape == (4, 3, 6, 3) and H.shape == (4, 3, 6, 3, 3)
    assert np.array_equal(H, np.swapaxes(H, -1, -2)) or rel(H, np.swapaxes(H, -1, -2)) < 1e-14
    eps = 1e-5
    gp, _ = rnn.sensitivities(w + eps * vw, U + eps * vU, X, act)
    gm, _ = rnn.sensitivities(w - eps * vw, U - eps * vU, X, act)
    v = np.concatenate([vw[:, None], vU], axis=1)
    Hv = np.einsum("mntkl,ml->mntk", H, v)
    assert rel((gp - gm) / (2 * eps), Hv) < 1e-8


def test_linearization_jvp_vjp_are_adjoint():
    w, U, c, X, Y = problem(7)
    rng = np.random.default_rng(2)
    lin = rnn.linearize(w, U, c, X)
    vw, vU = rng.standard_normal(w.shape), rng.standard_normal(U.shape)
    cot = rng.standard_normal(Y.shape)
    Jv = lin.jvp(vw, vU)
    aw, aU = lin.vjp(cot)
    lhs = float(np.sum(Jv * cot))
    rhs = float(np.sum(aw * vw) + np.sum(aU * vU))
    assert lhs == pytest.approx(rhs, rel=1e-12)
    assert rel(lin.f0, rnn.forward(w, U, c, X)) < 1e-14
    gw, gU = rnn.vjp(w, U, c, X, cot)
    assert rel(gw, aw) < 1e-14 and rel(gU, aU) < 1e-14


@pytest.mark.parametrize("m,n", [(2048, 512), (7, 5), (100, 1000), (3, 700), (1, 1), (513, 257)])
def test_tiles_cover_every_neuron_sample_pair_once(m, n):
    tiles = rnn._blocks(np, m, n)
    cover = np.zeros((m, n), dtype=int)
    for i0, i1, j0, j1 in tiles:
        assert 0 <= i0 < i1 <= m and 0 <= j0 < j1 <= n
        assert (i1 - i0) * (j1 - j0) <= rnn._BLOCK_ELEMS or i1 - i0 == 1
        cover[i0:i1, j0:j1] += 1
    assert np.all(cover == 1)
    # neuron blocks of equal size (±1): alike tiles for the thread pool
    rows = sorted({i1 - i0 for i0, i1, _, _ in tiles})
    assert rows[-1] - rows[0] <= 1


@pytest.mark.parametrize("act", ["tanh", "gaussian"])
def test_tiled_linearization_and_outputs_equal_untiled(monkeypatch, act):
    """jvp, jvp_neurons, vjp, forward and the gradient assembled from many tiles."""
    w, U, c, X, Y = problem(20, m=7, n=5, T=4, d=2)
    rng = np.random.default_rng(3)
    vw, vU, cot = rng.standard_normal(7), rng.standard_normal((7, 2)), rng.standard_normal((5, 4))

    def everything():
        lin = rnn.linearize(w, U, c, X, act)
        return (lin.f0, lin.jvp(vw, vU), lin.jvp_neurons(vw, vU), *lin.vjp(cot),
                rnn.forward(w, U, c, X, act), *rnn.loss_and_grad(w, U, c, X, Y, act)[1:])

    ref = everything()
    monkeypatch.setattr(rnn, "_BLOCK_ELEMS", 4)
    monkeypatch.setattr(rnn, "_TILE_SAMPLES", 2)
    # 4 neuron blocks (1, 2, 2, 2) × 3 sample chunks (2, 2, 1)
    assert len(rnn._blocks(np, 7, 5)) == 12
    for a, b in zip(everything(), ref, strict=True):
        assert a.shape == b.shape and rel(a, b) < 1e-13


# --------------------------------------------------------------------------
# the model itself


def test_symmetric_init_outputs_zero_and_loss_is_half_mean_square():
    rng = np.random.default_rng(8)
    m, n, T, d = 64, 9, 11, 4
    X = rng.standard_normal((n, T, d))
    X /= np.linalg.norm(X, axis=-1, keepdims=True)
    Y = rng.standard_normal((n, T))
    ini = symmetric_init(m, d, 0.5, 3)
    f = rnn.forward(ini.w0, ini.U0, ini.c, X)
    assert f.shape == (n, T)
    assert np.max(np.abs(f)) < 1e-14
    R, gw, gU = rnn.loss_and_grad(ini.w0, ini.U0, ini.c, X, Y)
    assert R == pytest.approx(0.5 * np.mean(Y**2), rel=1e-13)
    assert rnn.loss(ini.w0, ini.U0, ini.c, X, Y, loss="final-step") == pytest.approx(
        0.5 * np.mean(Y[:, -1] ** 2), rel=1e-13)
    # the two halves get opposite gradients (c flips), bit for bit
    assert np.array_equal(gw[: m // 2], -gw[m // 2:])


def test_forward_matches_definition():
    w, U, c, X, Y = problem(9)
    m, n, T = w.shape[0], X.shape[0], X.shape[1]
    h = np.zeros((m, n))
    ref = np.zeros((n, T))
    for t in range(T):
        h = np.tanh(w[:, None] * h + U @ X[:, t, :].T)
        ref[:, t] = c @ h / math.sqrt(m)
    assert rel(rnn.forward(w, U, c, X), ref) < 1e-14


def test_bad_shapes_and_loss_are_rejected():
    w, U, c, X, Y = problem(10)
    with pytest.raises(ValueError, match="shape"):
        rnn.loss_and_grad(w[:-1], U, c, X, Y)
    with pytest.raises(ValueError, match="Y must have shape"):
        rnn.loss_and_grad(w, U, c, X, Y[:, :-1])
    with pytest.raises(ValueError, match="loss must be one of"):
        rnn.loss_and_grad(w, U, c, X, Y, loss="mean")


def test_no_m_n_T_d_tensor_is_formed():
    """Peak memory stays O(m·n·T + …), far below one m·n·T·d tensor."""
    rng = np.random.default_rng(11)
    m, n, T, d = 128, 64, 16, 64
    X = rng.standard_normal((n, T, d)) / math.sqrt(d) / 2
    Y = rng.standard_normal((n, T))
    w, U, c = rng.uniform(-0.5, 0.5, m), rng.standard_normal((m, d)), rng.choice([-1.0, 1.0], m)
    rnn.loss_and_grad(w, U, c, X, Y, threads=1)  # warm caches / generated modules
    tracemalloc.start()
    try:
        rnn.loss_and_grad(w, U, c, X, Y, threads=1)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    mnTd = m * n * T * d * 8
    assert peak < mnTd / 8, (peak, mnTd)


@pytest.mark.parametrize("act,kinds", [("tanh", 1), ("logistic", 1), ("gaussian", 2)])
def test_tape_keeps_sigma_prime_only_where_it_is_not_a_polynomial_in_sigma(act, kinds):
    """tanh, logistic: σ' = P(σ) (derived), so the tape is m·n·T floats; Gaussian keeps σ' too."""
    w, U, c, X, Y = problem(19, m=10, n=6, T=5, d=3)
    ws = rnn.Workspace()
    R, gw, gU = rnn.loss_and_grad(w, U, c, X, Y, act, workspace=ws)
    assert ws.nbytes == kinds * 10 * 6 * 5 * 8
    R0, gw0, gU0 = rnn.loss_and_grad(w, U, c, X, Y, act)
    assert R == R0 and np.array_equal(gw, gw0) and np.array_equal(gU, gU0)


def test_saturated_neurons_raise_no_floating_point_event():
    """|z| far beyond tanh's clamp (exp(−2|z|) would underflow): the NumPy path gives
    the array-API path's numbers and no event, even with every FP event raising."""
    xps = pytest.importorskip("array_api_strict")
    w, U, c, X, Y = problem(21, m=8, n=6, T=5, d=3)
    U = U * 1e3
    U[0] = 1e306  # |s| near the top of the double range
    with np.errstate(all="raise"):
        R, gw, gU = rnn.loss_and_grad(w, U, c, X, Y, "tanh")
        f = rnn.forward(w, U, c, X, "tanh")
    args = [xps.asarray(a, dtype=xps.float64) for a in (w, U, c, X, Y)]
    R0, gw0, gU0 = rnn.loss_and_grad(*args, "tanh")
    assert np.all(np.isfinite(gw)) and np.all(np.isfinite(gU))
    assert R == pytest.approx(R0, rel=1e-13)
    # NumPy's forward forms σ(z) = F(2z) (symbolic.activations.scaled_form): a few
    # roundings of 1 from the array-API path's σ, per neuron
    f0 = rnn.to_numpy(rnn.forward(*args[:4], "tanh"))
    assert np.max(np.abs(f - f0)) <= 8 * 2.0**-53 * np.sum(np.abs(c)) / np.sqrt(8)
    assert np.max(np.abs(gw - rnn.to_numpy(gw0))) <= 1e-13 * np.max(np.abs(gw))
    assert np.max(np.abs(gU - rnn.to_numpy(gU0))) <= 1e-13 * np.max(np.abs(gU))


# --------------------------------------------------------------------------
# the shipped checker


def test_check_grads_passes_on_exact_gradients():
    w, U, c, X, Y = problem(12)
    out = rnn.check_grads(w, U, c, X, Y, "logistic")
    assert len(out["directions"]) == 4
    out = rnn.check_grads(w, U, c, X, Y, "tanh", loss="final-step")
    assert all("forward_mode" in row for row in out["directions"])


def test_check_grads_catches_a_wrong_gradient(monkeypatch):
    w, U, c, X, Y = problem(13)
    good = rnn.loss_and_grad

    def off_by_a_bit(*a, **k):
        R, gw, gU = good(*a, **k)
        return R, gw * (1 + 1e-4), gU

    monkeypatch.setattr(rnn, "loss_and_grad", off_by_a_bit)
    with pytest.raises(AssertionError) as exc:
        rnn.check_grads(w, U, c, X, Y, "tanh")
    text = str(exc.value)
    for name in ("w:", "U:", "c:", "X:", "Y:", "grad w:", "activation='tanh'", "failed:"):
        assert name in text


# --------------------------------------------------------------------------
# other namespaces


def test_loss_and_grad_under_array_api_strict():
    xps = pytest.importorskip("array_api_strict")
    w, U, c, X, Y = problem(14)
    args = [xps.asarray(a, dtype=xps.float64) for a in (w, U, c, X, Y)]
    for loss in LOSSES:
        R, gw, gU = rnn.loss_and_grad(*args, "tanh", loss)
        R0, gw0, gU0 = rnn.loss_and_grad(w, U, c, X, Y, "tanh", loss)
        assert R == pytest.approx(R0, rel=1e-13)
        assert rel(rnn.to_numpy(gw), gw0) < 1e-13 and rel(rnn.to_numpy(gU), gU0) < 1e-13
    f = rnn.forward(*args[:4])
    assert rel(rnn.to_numpy(f), rnn.forward(w, U, c, X)) < 1e-13
    J = rnn.jvp(args[0], args[1], args[3], args[0], args[1])
    assert rel(rnn.to_numpy(J), rnn.jvp(w, U, X, w, U)) < 1e-13
    g, H = rnn.sensitivities(args[0], args[1], args[3], "gaussian")
    g0, H0 = rnn.sensitivities(w, U, X, "gaussian")
    assert rel(rnn.to_numpy(H), H0) < 1e-13


def test_torch_backend_gives_the_numpy_numbers():
    torch = pytest.importorskip("torch")
    w, U, c, X, Y = problem(15, m=12)
    args = [torch.asarray(a, dtype=torch.float64) for a in (w, U, c, X, Y)]
    for act in ACTS:
        R, gw, gU = rnn.loss_and_grad(*args, act, "all-steps")
        R0, gw0, gU0 = rnn.loss_and_grad(w, U, c, X, Y, act, "all-steps")
        assert isinstance(gw, torch.Tensor)
        assert R == pytest.approx(R0, rel=1e-13)
        assert rel(gw.numpy(), gw0) < 1e-13 and rel(gU.numpy(), gU0) < 1e-13


def _cuda_torch():
    try:
        import torch
    except ImportError:
        return None
    return torch if torch.cuda.is_available() else None


@pytest.mark.gpu
def test_torch_cuda_backend_gives_the_numpy_numbers():
    torch = _cuda_torch()
    if torch is None:
        pytest.skip("no CUDA device (torch.cuda unavailable)")
    w, U, c, X, Y = problem(16, m=64, n=32, T=12, d=5)
    args = [torch.asarray(a, dtype=torch.float64, device="cuda") for a in (w, U, c, X, Y)]
    R, gw, gU = rnn.loss_and_grad(*args)
    R0, gw0, gU0 = rnn.loss_and_grad(w, U, c, X, Y)
    assert R == pytest.approx(R0, rel=1e-12)
    assert rel(gw.cpu().numpy(), gw0) < 1e-12 and rel(gU.cpu().numpy(), gU0) < 1e-12


@pytest.mark.gpu
def test_cupy_backend_gives_the_numpy_numbers():
    cp = cupy_or_skip()
    w, U, c, X, Y = problem(17, m=64, n=32, T=12, d=5)
    R, gw, gU = rnn.loss_and_grad(*(cp.asarray(a) for a in (w, U, c, X, Y)))
    R0, gw0, gU0 = rnn.loss_and_grad(w, U, c, X, Y)
    assert R == pytest.approx(R0, rel=1e-12)
    assert rel(cp.asnumpy(gw), gw0) < 1e-12 and rel(cp.asnumpy(gU), gU0) < 1e-12


def test_array_api_compat_numpy_wrapper_path(monkeypatch):
    """With NumPy < 2 the wrapper namespace of array-api-compat is used; same numbers."""
    w, U, c, X, Y = problem(18, m=20)
    R0, gw0, gU0 = rnn.loss_and_grad(w, U, c, X, Y, "logistic", "final-step")
    J0 = rnn.jvp(w, U, X, w, U)
    monkeypatch.setattr(rnn, "_NUMPY2", False)
    assert rnn._namespace(w) is not np
    R, gw, gU = rnn.loss_and_grad(w, U, c, X, Y, "logistic", "final-step")
    assert R == R0 and np.array_equal(gw, gw0) and np.array_equal(gU, gU0)
    assert rel(rnn.jvp(w, U, X, w, U), J0) < 1e-15
