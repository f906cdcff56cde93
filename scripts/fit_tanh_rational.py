"""Derives the float32 tanh coefficients in csrc/common/activation_math.h (act::tanh).

tanh(x) / x is fitted by P(t) / Q(t), t = x^2, deg P = 6, deg Q = 3 (so tanh ~ x P / Q is odd with
numerator degree 13, denominator degree 6), minimising the largest *relative* error on x in [0, 9]
(float32 tanh rounds to 1 from about 9.01): linearised least squares (Sanathanan-Koerner: each
round divides by the previous Q) with Lawson reweighting, which drives the error toward
equioscillation. The result is scaled to P(0) = 1 and printed as float32 literals with the error
of the float64 rational and of the rational with float32-rounded coefficients.

    /work/venv/bin/python scripts/fit_tanh_rational.py
"""
import numpy as np

CLAMP, DEG_P, DEG_Q, ROUNDS = 9.0, 6, 3, 200


def fit():
    # Dense in x, denser near the clamp (sine spacing), as the error peaks at the ends.
    x = np.unique(np.concatenate([np.linspace(0, CLAMP, 20000)[1:],
                                  CLAMP * np.sin(np.linspace(0, np.pi / 2, 20000))[1:]]))
    g = np.tanh(x) / x
    s = (x / CLAMP) ** 2  # t scaled to [0, 1] keeps the system well conditioned
    powers_p = np.vstack([s ** k for k in range(DEG_P + 1)]).T
    powers_q = np.vstack([s ** k for k in range(1, DEG_Q + 1)]).T
    q_prev, weight = np.ones_like(s), np.ones_like(s)
    for _ in range(ROUNDS):
        # P(s) - g (Q(s) - 1) = g with Q(0) = 1, each row scaled to relative error
        a = np.hstack([powers_p, -g[:, None] * powers_q])
        row = np.sqrt(weight) / (q_prev * g)
        sol = np.linalg.lstsq(a * row[:, None], g * row, rcond=None)[0]
        p, q = sol[:DEG_P + 1], np.concatenate([[1.0], sol[DEG_P + 1:]])
        q_prev = np.polyval(q[::-1], s)
        err = np.polyval(p[::-1], s) / q_prev / g - 1
        weight = weight * np.abs(err)
        weight /= weight.sum()
    # back from s = t / CLAMP^2 to t, then P(0) = 1
    p = p / CLAMP ** (2 * np.arange(DEG_P + 1))
    q = q / CLAMP ** (2 * np.arange(DEG_Q + 1))
    return x, p / p[0], q / p[0]


def max_rel_error(x, p, q):
    t = x * x
    return np.abs(x * np.polyval(p[::-1], t) / np.polyval(q[::-1], t) / np.tanh(x) - 1).max()


def main():
    x, p, q = fit()
    p32, q32 = p.astype(np.float32), q.astype(np.float32)
    print(f"float64 rational: max relative error {max_rel_error(x, p, q):.3g}")
    print(f"float32 coefficients: max relative error {max_rel_error(x, p32.astype(float), q32.astype(float)):.3g}")
    print("P (t^0 .. t^6):", ", ".join(f"{v:.9e}f" for v in p32))
    print("Q (t^0 .. t^3):", ", ".join(f"{v:.9e}f" for v in q32))


if __name__ == "__main__":
    main()
