"""WKV7 implementations against the per-token reference: outputs, final state and every input gradient.

The ground truth is the reference loop in float64. Tolerances: the float32 reference itself is ~2e-7
(relative RMS) from float64 at these sizes, chunked float32 measured <= 4e-7 (chunk 16/32) and <= 9e-7
(chunk 64); the bound below, 3e-6, leaves ~5x. In float64 the chunked form must agree to 1e-11.
CUDA cases (marked ``gpu``) use the same cases and report per-tensor errors.

Run: pytest tests/kernels/test_wkv7.py -q   (GPU cases: pytest -m gpu tests/kernels)
"""

from __future__ import annotations

import logging

import pytest
import torch
from wkv7_cases import make_inputs, report, run_with_grads

import rwkv_data.kernels as K
from rwkv_data.errors import KernelUnavailable
from rwkv_data.kernels import wkv7, wkv7_chunked, wkv7_ref

TOL_FP32 = 3e-6
TOL_FP64 = 1e-11
CASES = [(T, st) for T in (1, 15, 16, 63, 256) for st in (False, True)]


def case_id(B: int, T: int, H: int, N: int, dtype: str, state: bool) -> str:
    return f"B{B}-T{T}-H{H}-N{N}-{dtype}-{'state' if state else 'zero'}"


_truth: dict[tuple[int, bool], dict[str, torch.Tensor]] = {}


def truth(T: int, with_state: bool) -> dict[str, torch.Tensor]:
    if (T, with_state) not in _truth:
        xs, s = make_inputs(2, T, 2, 16, with_state=with_state)
        _truth[(T, with_state)] = run_with_grads(wkv7_ref, xs, s)
    return _truth[(T, with_state)]


def assert_close(ref: dict[str, torch.Tensor], got: dict[str, torch.Tensor], tol: float, label: str) -> None:
    errs = report(ref, got)
    lines = [f"{name:>5}: max-abs {mx:.2e}  rel-rms {rel:.2e}" for name, (mx, rel) in errs.items()]
    bad = [name for name, (_, rel) in errs.items() if not rel <= tol]  # `not <=` also catches NaN
    assert not bad, f"{label}: {bad} exceed rel-rms {tol:g}\n" + "\n".join(lines)


@pytest.mark.parametrize(("T", "with_state"), CASES, ids=[case_id(2, T, 2, 16, "fp32", s) for T, s in CASES])
def test_chunked_fp32_matches_fp64_reference(T: int, with_state: bool) -> None:
    xs, s = make_inputs(2, T, 2, 16, dtype=torch.float32, with_state=with_state)
    got = run_with_grads(wkv7_chunked, xs, s)
    assert set(got) == set(truth(T, with_state))
    assert_close(truth(T, with_state), got, TOL_FP32, f"chunked fp32 T={T}")


@pytest.mark.parametrize(("T", "with_state"), CASES, ids=[case_id(2, T, 2, 16, "fp64", s) for T, s in CASES])
def test_chunked_fp64_equals_reference(T: int, with_state: bool) -> None:
    xs, s = make_inputs(2, T, 2, 16, with_state=with_state)
    assert_close(truth(T, with_state), run_with_grads(wkv7_chunked, xs, s), TOL_FP64, f"chunked fp64 T={T}")


@pytest.mark.parametrize("chunk_len", [16, 64])
def test_other_chunk_lengths(chunk_len: int) -> None:
    xs, s = make_inputs(2, 63, 2, 16, dtype=torch.float32, with_state=True)
    assert_close(truth(63, True), run_with_grads(wkv7_chunked, xs, s, chunk_len=chunk_len), TOL_FP32, "chunk")
    with pytest.raises(ValueError, match="chunk_len"):
        wkv7_chunked(*xs, chunk_len=8)


def test_strong_decay_takes_the_pairwise_path_and_stays_finite() -> None:
    # w far above the model's clamp (decay ~ exp(-e^6)): the factored form would overflow, the pairwise one not
    xs, s = make_inputs(1, 40, 1, 16, with_state=True)
    with torch.no_grad():
        xs[1].add_(6.0)
    ref = run_with_grads(wkv7_ref, xs, s)
    x32 = [x.detach().float().requires_grad_() for x in xs]
    got = run_with_grads(wkv7_chunked, x32, s.detach().float().requires_grad_())
    assert all(torch.isfinite(t).all() for t in got.values())
    assert_close(ref, got, TOL_FP32, "strong decay")


def test_bf16_inputs_give_bf16_output_and_fp32_state() -> None:
    xs, _ = make_inputs(1, 20, 2, 16, dtype=torch.bfloat16)
    for impl in ("reference", "chunked"):
        y, s = wkv7(*xs, impl=impl)
        assert y.dtype == torch.bfloat16 and s.dtype == torch.float32 and tuple(s.shape) == (1, 2, 16, 16)
    y_ref, _ = wkv7(*xs, impl="reference")
    assert (y.float() - y_ref.float()).abs().max() < 0.05


def test_state_continues_across_calls() -> None:
    xs, s = make_inputs(1, 50, 2, 16, with_state=True)
    y, sT = wkv7_chunked(*xs, state=s)
    y1, s1 = wkv7_chunked(*[x[:, :17] for x in xs], state=s)
    y2, s2 = wkv7_chunked(*[x[:, 17:] for x in xs], state=s1)
    torch.testing.assert_close(torch.cat([y1, y2], 1), y, rtol=0, atol=1e-12)
    torch.testing.assert_close(s2, sT, rtol=0, atol=1e-12)


def test_auto_picks_chunked_on_cpu_and_logs_once(caplog: pytest.LogCaptureFixture) -> None:
    xs, _ = make_inputs(1, 5, 1, 16, dtype=torch.float32)
    K._logged.clear()
    with caplog.at_level(logging.INFO, logger="rwkv_data.kernels"):
        a = wkv7(*xs)
        wkv7(*xs)
    assert [r.getMessage() for r in caplog.records].count("wkv7: impl=auto -> chunked (inputs on cpu)") == 1
    torch.testing.assert_close(a[0], wkv7_chunked(*xs)[0])


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU error")
def test_cuda_without_gpu_raises_kernel_unavailable() -> None:
    xs, _ = make_inputs(1, 5, 1, 64, dtype=torch.float32)
    with pytest.raises(KernelUnavailable, match="no CUDA device"):
        wkv7(*xs, impl="cuda")


def test_bad_inputs_name_the_tensor() -> None:
    xs, _ = make_inputs(1, 5, 2, 16, dtype=torch.float32)
    r, w, k, v, a, b = (x.detach() for x in xs)
    with pytest.raises(ValueError, match="impl must be one of"):
        wkv7(r, w, k, v, a, b, impl="triton")
    with pytest.raises(ValueError, match="k has shape"):
        wkv7(r, w, k[:, :4], v, a, b)
    with pytest.raises(TypeError, match="v is torch.float64"):
        wkv7(r, w, k, v.double(), a, b)
    with pytest.raises(ValueError, match=r"a must be \[B, T, H, N\]"):
        wkv7(r, w, k, v, a.flatten(2), b)
    with pytest.raises(ValueError, match="state must be"):
        wkv7(r, w, k, v, a, b, state=torch.zeros(1, 2, 16, 8))
    with pytest.raises(TypeError, match="b must be a floating-point"):
        wkv7(r, w, k, v, a, b.long())
