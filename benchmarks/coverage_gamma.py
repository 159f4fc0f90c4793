"""Calibration of gamma unmixing: coverage of credible intervals per scenario and method, and SBC for NUTS.

Model: the shipped pretrained joint IAE (Co60, Ba133, Co57, Cs137; 400 channels, 18-1618 keV; steel
0-30 mm), the simulated natural background, live time 600 s, the default flat count prior
``U(0, 1.5 * total)`` and ``u ~ U(0, 1)``. Every replicate is simulated **from the model itself**:
``y ~ Poisson(a_bkg b + sum_i a_i X_i(lambda(t)))`` with ``lambda(t) = weights_at(t)`` (whose
parameter map returns ``t`` exactly), so coverage measures the inference, not a model mismatch.
Truths: counts ``a``, thickness ``t``, activity ``a_i / (eta_i(t) * live_time)``.

Scenarios (expected counts in the window; fractions background, Co60, Ba133, Co57, Cs137): ``high``
1e5 at 8 mm; ``low`` 2 500 at 8 mm; ``thin`` 2e4 at 0.5 mm; ``thick`` 2e4 at 20 mm (all
0.30/0.20/0.20/0.10/0.20); ``absent`` 2e4 at 8 mm, 0.30/0.25/0.20/**0**/0.25 (positivity active);
``background`` 2e4 at 8 mm, 0.90/0.03/0.03/0.01/0.03.

Methods: BlackJAX NUTS (:func:`nuts_batch`), mean-field and low-rank Gaussian VI and the Laplace
approximation in NumPyro's unconstrained space (:mod:`bayes_unmix.inference.batch`), and the
published study's Laplace (Gaussian in the model's own coordinates at the MAP, constraints ignored).
Intervals: equal-tailed (central) 50/90/95 %; coverage of counts and activities is the mean over the
present components (per-component values in the JSON), with the binomial standard error
``sqrt(p(1-p)/n)`` for ``n`` replicates. For the absent nuclide (true count 0, which no equal-tailed
interval of a posterior on ``a >= 0`` can contain) the shortest (HPD) interval and the one-sided upper
limit ``[0, q_p]`` are reported as well (the latter covers 0 by construction; its mean is the upper limit).

SBC (NUTS): ``a_c ~ U(0, C)`` independently (``C`` = 4 000 counts, data-independent) and ``u ~ U(0, 1)``;
the fit uses the model's flat prior ``U(0, 1.5 * sum(y))``, whose bound is never reached by the
likelihood, so the posterior under the SBC prior is the fitted one restricted to ``a < C``: draws
with any count above ``C`` are discarded, the rest thinned to 99, and the rank of the truth among them
(0..99) is tested for uniformity with a chi-square test over 10 bins. Replicates keeping fewer than 99
draws are left out (a selection on the data alone, which leaves the ranks uniform); their number is
reported.

Sizes (defaults, chosen so the run takes about 40 min on 2 shared CPU cores): 500 replicates per
scenario for VI and Laplace, **100** for NUTS (2 chains x 200 warm-up x 200 draws, BlackJAX, 10 spectra
per compiled call) and 100 for SBC; the issue asks for 500 everywhere: pass ``--nuts-replicates 500
--sbc-replicates 500`` with about 5 times the CPU time. NUTS R-hat (rank-normalised split, bulk and
folded, max over counts and thickness) and divergences are reported per scenario.

    python benchmarks/coverage_gamma.py                   # writes benchmarks/results/coverage_gamma.{json,png}
    python benchmarks/coverage_gamma.py --quick           # a smoke run (minutes)
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import jax
import numpy as np
from scipy import stats

import bayes_unmix
from bayes_unmix.inference.batch import derived, laplace_batch, variational_batch
from bayes_unmix.inference.mcmc import NUTSConfig, nuts_batch
from bayes_unmix.models.gamma import GammaMixture
from bayes_unmix.pretrained import load_pretrained
from bayes_unmix.workflow import default_background

LIVE_TIME_S = 600.0
LEVELS = (0.50, 0.90, 0.95)
QUANTITIES = ("counts", "activity_bq", "thickness_mm")
BASE = (0.30, 0.20, 0.20, 0.10, 0.20)
SCENARIOS = {  # name: (total expected counts, thickness mm, fractions background first)
    "high": (1e5, 8.0, BASE),
    "low": (2.5e3, 8.0, BASE),
    "thin": (2e4, 0.5, BASE),
    "thick": (2e4, 20.0, BASE),
    "absent": (2e4, 8.0, (0.30, 0.25, 0.20, 0.0, 0.25)),
    "background": (2e4, 8.0, (0.90, 0.03, 0.03, 0.01, 0.03)),
}
METHODS = ("nuts", "vi-meanfield", "vi-lowrank", "laplace", "laplace-constrained")
SBC_MAX_COUNT = 4000.0
SBC_RANKS = 99


def setup() -> tuple[GammaMixture, np.ndarray]:
    model = load_pretrained("nai3_steel_joint")
    background = default_background(model.preprocessing)
    return GammaMixture.from_spectral_model(model, background, live_time_s=LIVE_TIME_S), background


def truth_of(mix: GammaMixture, counts: np.ndarray, thickness: float) -> tuple[dict, np.ndarray]:
    """True quantities and expected spectrum for component counts ``(C,)`` at ``thickness`` mm."""
    sm = mix.spectral_model
    weights = sm.weights_at(thickness)
    u = weights[:, 1]
    truth = derived(mix, {"count_background": counts[:1], "count_nuclides": counts[1:], "u": u})
    rate = counts @ np.asarray(mix.templates(sm.signatures(weights)))
    return truth, rate


def fit(method: str, mix: GammaMixture, spectra: np.ndarray, key: jax.Array, args) -> tuple[dict, dict]:
    """Draws of the reported quantities ``{q: (B, draws, ...)}`` and diagnostics."""
    if method == "nuts":
        config = NUTSConfig(num_warmup=args.warmup, num_samples=args.draws, num_chains=args.chains)
        chunks = [
            nuts_batch(mix, spectra[i : i + args.chunk], key=k, config=config)
            for i, k in zip(range(0, len(spectra), args.chunk), jax.random.split(key, len(spectra)))
        ]
        raw = {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
        q = derived(mix, raw)  # (B, chain, draw, ...)
        diag = {"rhat": max_rhat(q), "diverging": raw["diverging"].mean(axis=(1, 2)), "n_steps": raw["n_steps"].mean()}
        return {k: v.reshape(v.shape[0], -1, *v.shape[3:]) for k, v in q.items()}, diag
    if method.startswith("vi-"):
        raw = variational_batch(mix, spectra, key=key, guide=method[3:], steps=args.vi_steps, num_draws=args.vi_draws)
        return derived(mix, raw), {"elbo_mean": float(np.mean(raw["elbo"]))}
    space = "constrained" if method == "laplace-constrained" else "unconstrained"
    raw = laplace_batch(mix, spectra, key=key, space=space, num_draws=args.vi_draws)
    return derived(mix, raw), {"hessian_not_positive": float(1 - np.mean(raw["hessian_positive"]))}


def max_rhat(q: dict[str, np.ndarray]) -> np.ndarray:
    """Max rank-normalised split R-hat (bulk and folded) over counts and thickness per spectrum."""
    x = np.concatenate([q["counts"], q["thickness_mm"]], axis=-1)  # (B, chain, draw, K)
    x = np.moveaxis(x, -1, 1)  # (B, K, chain, draw)
    half = x.shape[-1] // 2
    split = np.concatenate([x[..., :half], x[..., half : 2 * half]], axis=-2)
    out = []
    for y in (split, np.abs(split - np.median(split, axis=(-2, -1), keepdims=True))):
        flat = y.reshape(*y.shape[:-2], -1)
        z = stats.norm.ppf((stats.rankdata(flat, axis=-1) - 0.375) / (flat.shape[-1] + 0.25)).reshape(y.shape)
        n = z.shape[-1]
        w = z.var(axis=-1, ddof=1).mean(-1)
        b = n * z.mean(-1).var(axis=-1, ddof=1)
        out.append(np.sqrt(((n - 1) / n * w + b / n) / w))
    return np.max(np.maximum(*out), axis=-1)


def covered(draws: np.ndarray, truth: np.ndarray, level: float, kind: str = "eti") -> np.ndarray:
    """Whether ``truth`` (broadcast over the batch) lies in each replicate's interval ``(B, K)``."""
    if kind == "eti":
        lo, hi = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2], axis=1)
    elif kind == "upper":
        lo, hi = np.zeros_like(draws[:, 0]), np.quantile(draws, level, axis=1)
    else:  # shortest interval holding a fraction ``level`` of the draws; one that starts at the smallest
        # draw of a non-negative quantity is extended to the support's bound 0 (a one-sided HPD interval)
        s = np.sort(draws, axis=1)
        m = int(np.ceil(level * s.shape[1]))
        widths = s[:, m - 1 :] - s[:, : s.shape[1] - m + 1]
        start = np.argmin(widths, axis=1)[:, None]
        lo, hi = np.take_along_axis(s, start, 1)[:, 0], np.take_along_axis(s, start + m - 1, 1)[:, 0]
        lo = np.where((start[:, 0] == 0) & (s[:, 0] >= 0), 0.0, lo)
    return (lo <= truth) & (truth <= hi)


def coverage_row(q: dict, truth: dict, present: np.ndarray) -> dict:
    row = {}
    for name in QUANTITIES:
        keep = present if name == "counts" else present[1:] if name == "activity_bq" else np.ones(1, bool)
        for level in LEVELS:
            c = covered(q[name], truth[name], level)
            per = c.mean(0)
            row[f"{name}_{round(level * 100)}"] = float(per[keep].mean())
            row[f"{name}_{round(level * 100)}_per_component"] = per.tolist()
    return row


def absent_row(q: dict, truth: dict, index: int) -> dict:
    draws, value = q["counts"][:, :, index : index + 1], truth["counts"][index : index + 1]
    row = {}
    for level in LEVELS:
        tag = round(level * 100)
        row[f"eti_{tag}"] = float(covered(draws, value, level).mean())
        row[f"hpd_{tag}"] = float(covered(draws, value, level, "hpd").mean())
        row[f"upper_{tag}"] = float(covered(draws, value, level, "upper").mean())
    row["mean_upper_limit_95"] = float(np.quantile(draws, 0.95, axis=1).mean())
    return row


def run_scenario(name: str, mix: GammaMixture, key: jax.Array, args) -> dict:
    total, thickness, fractions = SCENARIOS[name]
    a = total * np.asarray(fractions)
    truth, rate = truth_of(mix, a, thickness)
    k_sim, k_fit = jax.random.split(key)
    seed = int(jax.random.randint(k_sim, (), 0, 2**31 - 1))
    spectra = np.random.default_rng(seed).poisson(rate, size=(args.replicates, rate.size)).astype(np.float64)
    present = a > 0
    out = {"total": total, "thickness_mm": thickness, "fractions": list(fractions), "methods": {}}
    for method, k in zip(METHODS, jax.random.split(k_fit, len(METHODS))):  # keys independent of --methods
        if method not in args.methods:
            continue
        n = args.nuts_replicates if method == "nuts" else args.replicates
        start = time.perf_counter()
        q, diag = fit(method, mix, spectra[:n], k, args)
        row = {"n": n, "seconds": time.perf_counter() - start, **coverage_row(q, truth, present)}
        if method == "nuts":
            row.update(
                rhat_gt_1_01=float(np.mean(diag["rhat"] > 1.01)),
                rhat_gt_1_05=float(np.mean(diag["rhat"] > 1.05)),
                divergent_fraction=float(np.mean(diag["diverging"])),
                replicates_with_divergences=float(np.mean(diag["diverging"] > 0)),
                mean_leapfrog_steps=float(diag["n_steps"]),
            )
        else:
            row.update(diag)
        if not present.all():
            row["absent"] = absent_row(q, truth, int(np.flatnonzero(~present)[0]))
        out["methods"][method] = row
        print(f"  {name:10} {method:20} n={n:4d} {row['seconds']:7.1f} s", flush=True)
    return out


def run_sbc(mix: GammaMixture, key: jax.Array, args) -> dict:
    k_prior, k_sim, k_fit = jax.random.split(key, 3)
    n, components = args.sbc_replicates, len(mix.components)
    a = np.asarray(jax.random.uniform(k_prior, (n, components), maxval=SBC_MAX_COUNT))
    u = np.asarray(jax.random.uniform(jax.random.fold_in(k_prior, 1), (n,)))
    sm = mix.spectral_model
    weights = np.stack([1 - u, u], -1)[:, None, :]
    templates = np.asarray(jax.vmap(lambda w: mix.templates(sm.signatures(w)))(weights))
    rates = np.einsum("bc,bcn->bn", a, templates)
    seed = int(jax.random.randint(k_sim, (), 0, 2**31 - 1))
    spectra = np.random.default_rng(seed).poisson(rates).astype(np.float64)
    truth = derived(mix, {"count_background": a[:, :1], "count_nuclides": a[:, 1:], "u": u[:, None]})
    q, diag = fit("nuts", mix, spectra, k_fit, args)
    inside = np.all(q["counts"] <= SBC_MAX_COUNT, axis=-1)  # (B, draws): the SBC prior's support
    ranks = {name: [] for name in QUANTITIES}
    usable = inside.sum(1) >= SBC_RANKS  # selecting replicates on the data alone keeps ranks uniform
    for b in np.flatnonzero(usable):
        kept = np.flatnonzero(inside[b])
        chosen = kept[np.linspace(0, len(kept) - 1, SBC_RANKS).round().astype(int)]
        for name in QUANTITIES:
            ranks[name].append(np.sum(q[name][b, chosen] < truth[name][b], axis=0))
    labels = {"counts": mix.components, "activity_bq": mix.nuclides, "thickness_mm": ("thickness",)}
    out = {"replicates": int(usable.sum()), "simulated": n, "prior_max_count": SBC_MAX_COUNT, "tests": {}}
    out["ranks_per_replicate"] = SBC_RANKS
    for name in QUANTITIES:
        r = np.asarray(ranks[name])  # (B, K), values 0..99
        for k, label in enumerate(labels[name]):
            hist = np.bincount(r[:, k] * 10 // (SBC_RANKS + 1), minlength=10)
            out["tests"][f"{name}[{label}]"] = {
                "p_value": float(stats.chisquare(hist).pvalue),
                "histogram": hist.tolist(),
            }
    out["rhat_gt_1_01"] = float(np.mean(diag["rhat"] > 1.01))
    out["divergent_fraction"] = float(np.mean(diag["diverging"]))
    out["kept_fraction"] = float(inside.mean())
    return out


def print_table(results: dict, sbc: dict | None) -> None:
    head = " ".join(f"{q[:5]}{round(p * 100):>3}%".rjust(10) for q in ("count", "activ", "thick") for p in LEVELS)
    print(
        f"\nCoverage (%) of equal-tailed intervals, (binomial SE), * = more than 2 points from nominal\n"
        f"{'scenario':10} {'method':20} {'n':>4} {head}"
    )
    for scenario, res in results.items():
        for method, row in res["methods"].items():
            cells = []
            for name in QUANTITIES:
                for p in LEVELS:
                    c = row[f"{name}_{round(p * 100)}"]
                    se = np.sqrt(c * (1 - c) / row["n"])
                    cells.append(f"{100 * c:5.1f}({100 * se:3.1f}){'*' if abs(c - p) > 0.02 else ' '}")
            print(f"{scenario:10} {method:20} {row['n']:4d} " + " ".join(cells))
    for scenario, res in results.items():
        nuts_row = res["methods"].get("nuts")
        if nuts_row:
            print(
                f"NUTS {scenario:10}: R-hat>1.01 in {100 * nuts_row['rhat_gt_1_01']:.1f} % of replicates "
                f"(>1.05: {100 * nuts_row['rhat_gt_1_05']:.1f} %), divergent transitions "
                f"{100 * nuts_row['divergent_fraction']:.2f} %, mean leapfrog steps {nuts_row['mean_leapfrog_steps']:.1f}"
            )
    for scenario, res in results.items():
        for method, row in res["methods"].items():
            if "absent" in row:
                ab = row["absent"]
                print(
                    f"absent Co57 {method:20} ETI95 {100 * ab['eti_95']:5.1f}  HPD50/90/95 "
                    f"{100 * ab['hpd_50']:5.1f} {100 * ab['hpd_90']:5.1f} {100 * ab['hpd_95']:5.1f}  "
                    f"upper95 {100 * ab['upper_95']:5.1f}  mean 95% upper limit {ab['mean_upper_limit_95']:.0f} counts"
                )
    if sbc:
        tests = " ".join(f"{k}={v['p_value']:.2f}" for k, v in sbc["tests"].items())
        print(f"SBC (NUTS, {sbc['replicates']} of {sbc['simulated']} replicates, chi-square p-values): {tests}")


def figure(results: dict, sbc: dict | None, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(15, 8))
    names = list(results)
    for ax, name in zip(axes[0], QUANTITIES):
        for j, method in enumerate(METHODS):
            x = np.arange(len(names)) + 0.12 * (j - 2)
            for level, marker in ((0.95, "o"), (0.5, "s")):
                rows = [results[s]["methods"].get(method) for s in names]
                c = np.array([r[f"{name}_{round(level * 100)}"] if r else np.nan for r in rows])
                n = np.array([r["n"] if r else 1 for r in rows])
                ax.errorbar(
                    x,
                    100 * c,
                    100 * np.sqrt(c * (1 - c) / n),
                    fmt=marker,
                    color=f"C{j}",
                    label=method if level == 0.95 else None,
                    ms=4,
                    mfc="none" if level == 0.5 else None,
                )
        for level in (50, 95):
            ax.axhspan(level - 2, level + 2, color="0.9", zorder=0)
        ax.set_xticks(np.arange(len(names)), names)
        ax.set_title(f"{name}: coverage of 95 % (o) and 50 % (s) intervals")
        ax.set_ylabel("coverage (%)")
    axes[0, 0].legend(fontsize=8)
    if sbc:
        for ax, test in zip(axes[1], ("counts[Co57]", "activity_bq[Cs137]", "thickness_mm[thickness]")):
            hist = np.asarray(sbc["tests"][test]["histogram"])
            ax.bar(np.arange(10), hist, color="C0")
            expected = hist.sum() / 10
            ax.axhspan(*stats.binom.ppf([0.005, 0.995], hist.sum(), 0.1), color="0.85", zorder=0)
            ax.axhline(expected, color="k", lw=1)
            ax.set_title(f"SBC ranks (NUTS) {test}: p = {sbc['tests'][test]['p_value']:.2f}")
            ax.set_xlabel("rank decile")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replicates", type=int, default=500, help="replicates per scenario (VI, Laplace)")
    parser.add_argument("--nuts-replicates", type=int, default=100, help="NUTS replicates per scenario")
    parser.add_argument("--sbc-replicates", type=int, default=100)
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--draws", type=int, default=200)
    parser.add_argument("--chunk", type=int, default=10, help="spectra per compiled NUTS call")
    parser.add_argument("--vi-steps", type=int, default=500)
    parser.add_argument("--vi-draws", type=int, default=500)
    parser.add_argument("--scenarios", nargs="*", default=list(SCENARIOS), choices=list(SCENARIOS))
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="smoke run: 20 replicates, short chains")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "coverage_gamma.json")
    args = parser.parse_args()
    if args.quick:
        args.replicates = args.nuts_replicates = args.sbc_replicates = args.chunk = 20
        args.warmup, args.draws, args.vi_steps, args.vi_draws = 100, 100, 200, 400
    args.nuts_replicates = min(args.nuts_replicates, args.replicates)
    mix, _ = setup()
    key = jax.random.key(args.seed)
    start = time.perf_counter()
    results = {}
    record = {
        "benchmark": "coverage_gamma",
        "package_version": bayes_unmix.__version__,
        "jax_version": jax.__version__,
        "cpu_count": os.cpu_count(),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "interval": "equal-tailed; counts and activity pooled (mean) over present components",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for name in args.scenarios:
        results[name] = run_scenario(name, mix, jax.random.fold_in(key, list(SCENARIOS).index(name)), args)
        args.out.write_text(json.dumps({**record, "scenarios": results}, indent=1))  # partial results survive
    sbc = run_sbc(mix, jax.random.fold_in(key, 100), args) if args.sbc_replicates else None
    record.update(scenarios=results, sbc=sbc, seconds=time.perf_counter() - start)
    args.out.write_text(json.dumps(record, indent=1))
    print_table(results, sbc)
    figure(results, sbc, args.out.with_suffix(".png"))
    print(f"total {record['seconds']:.0f} s; wrote {args.out} and {args.out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
