"""Regime map: which noise family needs the least noise, by geometry, steps, sampling rate and epsilon.

Runs ``optimize_noise`` (objective "std", all families, method "auto") on the grid
geometry in {scalar, l1, l2} x steps in {1, 10, 100, 1e3, 1e4} x q in {1, 0.01} x eps in {0.3, 1, 3}, delta 1e-5,
clip / sensitivity 1, and writes ``benchmarks/results/frontier.json`` and ``docs/frontier.md``.
Results are cached (``LMODP_CACHE_DIR``), so a rerun only computes what is missing.

``--families F ...`` reruns only these families (the Gaussian always: every ratio is to it) in the chosen cells
and keeps the stored rows of the others; each row records which lmodp version computed each family
(``computed_by``), and docs/frontier.md states it. ``--scalar-table`` runs the free-form comparison on scalar
cells T in {10, 30, 100} x q in {1, 0.01} x eps in {0.5, 1, 3} with all families.

    .venv/bin/python benchmarks/frontier.py [--steps 1 10 100] [--geometries l2] [--jobs 1] [--families laplace]
    .venv/bin/python benchmarks/frontier.py --markdown   # docs/frontier.md from the stored JSON only
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import platform
import time
from collections import Counter
from pathlib import Path

from lmodp_core import L1Ball, L2Ball, Scalar, __version__
from lmodp_core.search import optimize_noise

ROOT = Path(__file__).resolve().parents[1]
GEOMETRIES = {"scalar": Scalar(1.0), "l1": L1Ball(1.0), "l2": L2Ball(1.0)}
STEPS = (1, 10, 100, 1000, 10000)
RATES = (1.0, 0.01)
EPSILONS = (0.3, 1.0, 3.0)
DELTA = 1e-5
SCALAR_TABLE = {"steps": (10, 30, 100), "rates": (1.0, 0.01), "epsilons": (0.5, 1.0, 3.0)}
NON_GAUSSIAN = ("lmo", "laplace", "piecewise")
RESULTS = ROOT / "benchmarks" / "results" / "frontier.json"


def _key(row: dict) -> tuple:
    return row["geometry"], row["sample_rate"], row["steps"], row["epsilon"]


def _row(name: str, rate: float, steps: int, eps: float, result, seconds: float, kept: dict | None) -> dict:
    """One cell; ``kept`` (the stored row) supplies the families this run did not search, with their versions."""
    by_family = {f: (c.objective, c.epsilon, c.method) for f, c in ((c.family, c) for c in result.candidates)}
    computed_by = dict.fromkeys(by_family, __version__)
    if kept is not None:
        for family in set(kept["std"]) - set(by_family):
            by_family[family] = (kept["std"][family], kept["sound_epsilon"][family], kept["method"][family])
            computed_by[family] = kept["computed_by"][family]
    gaussian = by_family["gaussian"][0]
    winner = min(by_family, key=lambda f: by_family[f][0])
    noise = result.noise.to_dict() if winner == result.family else kept["noise"]
    return {
        "geometry": name,
        "sample_rate": rate,
        "steps": steps,
        "epsilon": eps,
        "delta": DELTA,
        "winner": winner,
        "ratio_to_gaussian": by_family[winner][0] / gaussian,
        "std": {f: v[0] for f, v in by_family.items()},
        "ratio": {f: v[0] / gaussian for f, v in by_family.items()},
        "sound_epsilon": {f: v[1] for f, v in by_family.items()},
        "method": {f: v[2] for f, v in by_family.items()},
        "noise": noise,
        "seconds": round(seconds, 2),
        "computed_by": computed_by,
    }


def run(configs, n_jobs, previous: dict | None = None, families: tuple[str, ...] | None = None) -> list[dict]:
    """Search each (geometry, q, T, eps); with ``families``, only those (and the Gaussian) are searched and the
    other families' numbers are kept from the ``previous`` row of the cell."""
    rows = []
    for index, (name, rate, steps, eps) in enumerate(configs, 1):
        kept = None if families is None else previous[(name, rate, steps, eps)]
        started = time.perf_counter()
        result = optimize_noise(
            eps,
            DELTA,
            steps,
            rate,
            geometry=GEOMETRIES[name],
            n_jobs=n_jobs,
            **({"families": families} if families else {}),
        )
        seconds = result.stats["seconds"] + (kept["seconds"] if kept is not None else 0.0)
        rows.append(_row(name, rate, steps, eps, result, seconds, kept))
        ratios = ", ".join(f"{f} {r:.3f}" for f, r in rows[-1]["ratio"].items() if f != "gaussian")
        print(
            f"[{index}/{len(configs)}] {name:6s} q={rate:<5g} T={steps:<6d} eps={eps:<4g} -> "
            f"{rows[-1]['winner']:9s} ratio {rows[-1]['ratio_to_gaussian']:.3f}  ({ratios})  "
            f"{time.perf_counter() - started:.1f}s",
            flush=True,
        )
    return rows


def _cell(row: dict) -> str:
    if row["winner"] == "gaussian":
        runner_up = min((f for f in row["ratio"] if f != "gaussian"), key=lambda f: row["ratio"][f])
        return f"gaussian ({runner_up} {row['ratio'][runner_up]:.2f}x)"
    return f"**{row['winner']} {row['ratio_to_gaussian']:.2f}x**"


def _table(subset: list[dict], cell) -> list[str]:
    """A (q, steps) x eps markdown table of ``cell(row)``."""
    epsilons = sorted({r["epsilon"] for r in subset})
    lines = ["| q | steps | " + " | ".join(f"eps={e:g}" for e in epsilons) + " |", "|---|---|" + "---|" * len(epsilons)]
    for rate, steps in sorted({(r["sample_rate"], r["steps"]) for r in subset}, key=lambda k: (-k[0], k[1])):
        cells = {r["epsilon"]: cell(r) for r in subset if r["sample_rate"] == rate and r["steps"] == steps}
        lines.append(f"| {rate:g} | {steps} | " + " | ".join(cells.get(e, "-") for e in epsilons) + " |")
    return lines


def _lmo_wins(rows: list[dict]) -> list[str]:
    """Where LMO beats both Gaussian and Laplace, and by how much it beats Laplace."""
    wins = [r for r in rows if r["winner"] == "lmo"]
    if not wins:
        return [
            "LMO never wins outright here: where a non-Gaussian noise wins, plain Laplace is as good or better.",
            "",
        ]
    cells = [
        f"- {r['geometry']}, q={r['sample_rate']:g}, T={r['steps']}, eps={r['epsilon']:g}: LMO "
        f"{r['ratio']['lmo']:.3f}x the Gaussian's std, Laplace {r['ratio']['laplace']:.3f}x"
        for r in wins
    ]
    return [f"LMO wins outright in {len(wins)} cell(s), by small margins over Laplace:", "", *cells, ""]


def _freeform_summary(rows: list[dict]) -> list[str]:
    """One sentence: where the free-form family took a cell from the Gaussian, and by how much."""
    searched = [r for r in rows if "piecewise" in r["std"]]
    taken = [
        r
        for r in searched
        if r["winner"] == "piecewise"
        and min((f for f in r["std"] if f != "piecewise"), key=lambda f: r["std"][f]) == "gaussian"
    ]
    if not searched:
        return []
    best = min(taken, key=lambda r: r["ratio_to_gaussian"], default=None)
    wins = sum(r["winner"] == "piecewise" for r in searched)
    clear = sum(r["ratio_to_gaussian"] <= 0.98 for r in taken)
    return [
        f"In the {len(searched)} cells where it was searched it wins {wins}, {len(taken)} of them cells the "
        f"Gaussian won before, {clear} of those by 2% or more"
        + (
            f" (largest gain: {best['ratio_to_gaussian']:.3f}x the Gaussian's std at {best['geometry']}, "
            f"q={best['sample_rate']:g}, T={best['steps']}, eps={best['epsilon']:g}); where the Gaussian won "
            "before, the histogram's gain shrinks as T grows (the composed loss becomes Gaussian-like)."
            if best
            else "."
        )
    ]


def _freeform_vs_lmo(rows: list[dict]) -> list[str]:
    """Per scalar/L1 cell: the free-form std over the LMO std (< 1: free-form needs less noise)."""
    lines = [
        "## Free-form (piecewise) against the paper's LMO grid",
        "",
        "std of the optimised histogram ÷ std of the best LMO shape (the paper's grid, screened and refined),",
        "both calibrated soundly to the same target; < 1 means the free-form density needs less noise. In",
        "brackets: free-form ÷ Gaussian.",
        "",
    ]
    for name in ("scalar", "l1"):
        subset = [r for r in rows if r["geometry"] == name and "piecewise" in r["std"] and "lmo" in r["std"]]
        if not subset:
            continue
        lines += [
            f"### {name}",
            "",
            *_table(subset, lambda r: f"{r['std']['piecewise'] / r['std']['lmo']:.3f} ({r['ratio']['piecewise']:.3f})"),
        ]
        ratios = [r["std"]["piecewise"] / r["std"]["lmo"] for r in subset]
        lines += [
            "",
            f"{name}: free-form beats LMO in {sum(x < 1 for x in ratios)} of {len(ratios)} cells; median "
            f"ratio {sorted(ratios)[len(ratios) // 2]:.3f}, best {min(ratios):.3f}, worst {max(ratios):.3f}.",
            "",
        ]
    return lines


def _l2_gap_split(rows: list[dict]) -> list[str]:
    """Per L2 cell, Laplace's std ratio to the Gaussian split into the noise's share and the accountant's."""
    subset = [r for r in rows if r["geometry"] == "l2" and "laplace" in r["ratio"]]
    if not subset:
        return []
    noise_part = math.sqrt(2.0)  # d -> inf: sigma_eff = b sqrt(I_f); Laplace I_f Var = (1/b^2)(2 b^2) = 2
    return [
        "## L2: how much of the gap is the noise, how much the accountant",
        "",
        "Laplace's calibrated std ÷ the Gaussian's, split as (noise) × (accountant). The noise's share is what",
        "the d->inf limit forces on any accountant: an L2-clipped step becomes a Gaussian mechanism with",
        "sigma_eff = 1/sqrt(I_f), so Laplace needs sqrt(I_f·Var) = sqrt(2) = 1.414x the Gaussian's std even",
        "with exact accounting. The rest is this library's sound bound for vector non-Gaussian noise (the smaller",
        "of RDP with the Poisson bounds and PLD through the profile pair) against the Gaussian's exact PLD. For LMO",
        "shapes the noise's share is",
        "sqrt(I_f·Var) >= sqrt(2) too (the search's notes give the grid's best, 1.495x).",
        "",
        *_table(
            subset,
            lambda r: f"{r['ratio']['laplace']:.2f} = {noise_part:.2f} × {r['ratio']['laplace'] / noise_part:.2f}",
        ),
        "",
    ]


def _scalar_table(rows: list[dict]) -> list[str]:
    """The free-form family on scalar cells with T >= 10: who wins without it, and its std ratios."""
    if not rows:
        return []
    lines = [
        "## Free-form on scalar queries with T >= 10",
        "",
        "Scalar query, sensitivity 1, delta 1e-5, all families searched (`benchmarks/frontier.py "
        '--scalar-table`). "Best before" is the winner among Gaussian, Laplace and LMO; the ratios are',
        "std ÷ the PLD-calibrated Gaussian's std. Every ratio is between soundly calibrated noises (exact PLD",
        "for the histogram).",
        "",
        "| q | steps | eps | best before | free-form / Gaussian | free-form / LMO | free-form / best before |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in sorted(rows, key=lambda r: (-r["sample_rate"], r["steps"], r["epsilon"])):
        before = min((f for f in r["std"] if f != "piecewise"), key=lambda f: r["std"][f])
        lines.append(
            f"| {r['sample_rate']:g} | {r['steps']} | {r['epsilon']:g} | {before} "
            f"({r['ratio'][before]:.3f}) | {r['ratio']['piecewise']:.3f} | "
            f"{r['std']['piecewise'] / r['std']['lmo']:.3f} | "
            f"{r['std']['piecewise'] / r['std'][before]:.3f} |"
        )
    won = [
        r
        for r in rows
        if min((f for f in r["std"] if f != "piecewise"), key=lambda f: r["std"][f]) == "gaussian"
        and r["ratio"]["piecewise"] <= 0.98
    ]
    lines += [
        "",
        f"Cells where the Gaussian won before and the free-form density now wins with a std ratio <= 0.98: "
        f"{len(won)} of {len(rows)}"
        + (
            " ("
            + "; ".join(
                f"q={r['sample_rate']:g}, T={r['steps']}, eps={r['epsilon']:g}: {r['ratio']['piecewise']:.3f}"
                for r in won
            )
            + ")."
            if won
            else "."
        ),
        "",
    ]
    return lines


def markdown(rows: list[dict], total_seconds: float, scalar_rows: list[dict], provenance: str) -> str:
    wins = Counter((r["geometry"], r["winner"]) for r in rows)
    l2 = [r for r in rows if r["geometry"] == "l2"]
    l2_min = min(min(r["ratio"]["lmo"], r["ratio"]["laplace"]) for r in l2) if l2 else float("nan")
    non_gaussian = [r for r in rows if r["winner"] != "gaussian"]
    l2_verdict = (
        "**For DP-SGD (L2 clipping, high dimension) the Gaussian wins, in every L2 cell measured here.**"
        if all(r["winner"] == "gaussian" for r in l2)
        else "**For DP-SGD (L2 clipping) the Gaussian should win; cells where it did not are listed below and "
        "indicate a problem.**"
    )
    lines = [
        "# Noise frontier: where does LMO, Laplace or a free-form density beat the Gaussian?",
        "",
        "Generated by `benchmarks/frontier.py` (raw numbers: `benchmarks/results/frontier.json`). Every noise is",
        'calibrated to the target with the library\'s **sound** accountant (`method="auto"`: tight PLD where a',
        "dominating shift is known; elsewhere the smaller of RDP and PLD through a pair built from the step's RDP",
        "profile); the Gaussian always with PLD. Objective: per-coordinate standard",
        "deviation at clip/sensitivity 1, delta = 1e-5. A cell shows the winner and its std ratio to the Gaussian",
        "(< 1: less noise than the Gaussian); where the Gaussian wins, the best other family and its ratio.",
        "",
        "## The answer in one paragraph",
        "",
        l2_verdict,
        "This is not a tuning accident: for any Laplace scale mixture f (the LMO family included)",
        "I_f·Var_f >= 2, whereas the Gaussian has I·Var = 1, and a bound that must hold in every dimension is",
        "governed by I_f (the d->inf limit of an L2-clipped step is a Gaussian mechanism with sigma = 1/sqrt(I_f)).",
        "So LMO noise needs at least sqrt(2) = 1.41x the Gaussian's standard deviation under L2 clipping;",
        f"the best non-Gaussian ratio measured for L2 here is {l2_min:.2f}x. LMO/Laplace-type noise wins only",
        "where the geometry is low-dimensional (a scalar query, or L1 clipping where the worst case concentrates",
        "on one coordinate) and the privacy loss is not yet Gaussian-like: a single step, or few effective",
        "compositions (strong subsampling with a larger epsilon). There Laplace's linear privacy loss beats the",
        "Gaussian's quadratic one, and the LMO mixture sometimes shaves a few percent more off Laplace.",
        'The free-form family (`"piecewise"`: a monotone histogram density optimised for the sound epsilon of',
        "each cell, docs/search.md) is searched for scalar and L1 cells; it skips L2 (a histogram has jumps, so",
        "no dimension-free L2 bound exists).",
        *_freeform_summary(rows),
        "",
        provenance,
        "",
        f"Non-Gaussian winners: {len(non_gaussian)} of {len(rows)} configurations "
        f"({', '.join(f'{g}: {wins[(g, f)]} {f}' for g in GEOMETRIES for f in NON_GAUSSIAN if wins[(g, f)])}"
        f"{'' if non_gaussian else 'none'}).",
        "",
        *_lmo_wins(rows),
        "Vector geometry (L1/L2) with non-Gaussian noise (except Laplace under L1, whose 1-D pair at the clip",
        "dominates: exact PLD) has no known dominating shift. Since 0.6 it is accounted with the smaller of RDP (the",
        "Poisson bound is the smaller of Zhu-Wang's and lmodp's binomial/Taylor bound) and PLD through a pair built",
        'from the unsampled step\'s RDP profile (docs/accounting.md, "PLD from the RDP profile"), while the',
        "Gaussian gets tight PLD. Part of the gap in those cells is this difference between accountants, not",
        "between noises; the d->inf limit (`asymptotic_epsilon`) shows the rest.",
        "",
    ]
    for name in GEOMETRIES:
        subset = [r for r in rows if r["geometry"] == name]
        if not subset:
            continue
        lines += [f"## {name}", "", *_table(subset, _cell), ""]
    lines += [*_l2_gap_split(rows), *_freeform_vs_lmo(rows), *_scalar_table(scalar_rows)]
    lines += [
        "## How the LMO row is obtained",
        "",
        "The paper's grid (docs/theory.md §4.7; 40,824 parameter combinations, 21,996 distinct shapes up to scale) is",
        "screened with closed-form proxies; for L2 the d->inf limit gives a rigorous lower bound on each shape's",
        "calibrated std, so every shape is pruned against the Gaussian without calibrating it (the row shows the",
        "best-bounded shape, calibrated soundly). For scalar and L1 geometry the best shapes under two proxies are",
        "calibrated soundly and the best one is refined with Nelder-Mead (a small budget: 10 shapes). A finer LMO",
        "search could gain a little in the scalar/L1 cells, but not in the L2 cells (the bound above).",
        "",
        "## How the free-form row is obtained",
        "",
        "The free-form density has bins of width (sensitivity)/m, m >= 4 chosen for at least 16 bins per std,",
        "over 8 std, then a geometric tail. Its log-decrements between neighbouring bins are linear between 8",
        "knots; Nelder-Mead moves the knots from the best other candidate, discretised (first blended toward a",
        "Laplace of the same std), for 60 shapes, each one calibrated soundly. The best calibrated shape is the",
        "family's row, so it is certified like every other row.",
        "",
        f"Run: lmodp {__version__}, Python {platform.python_version()}, {len(rows)} configurations,",
        f"{total_seconds / 60:.1f} min of cold searches in total on 2 shared cores (slowest: scalar/L1 with sampling,",
        "where every LMO and histogram calibration composes RDP and PLD of a non-Gaussian density).",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--geometries", nargs="+", choices=list(GEOMETRIES), default=list(GEOMETRIES))
    parser.add_argument("--steps", nargs="+", type=int, default=list(STEPS))
    parser.add_argument("--rates", nargs="+", type=float, default=list(RATES))
    parser.add_argument("--epsilons", nargs="+", type=float, default=list(EPSILONS))
    parser.add_argument("--jobs", type=int, default=1, help="processes per search (default 1)")
    parser.add_argument(
        "--families", nargs="+", choices=["gaussian", *NON_GAUSSIAN], help="rerun only these families in stored cells"
    )
    parser.add_argument("--scalar-table", action="store_true", help="only the free-form scalar table")
    parser.add_argument("--markdown", action="store_true", help="only regenerate docs/frontier.md from the JSON")
    args = parser.parse_args()
    if args.markdown:
        stored = _stored()
        (ROOT / "docs" / "frontier.md").write_text(
            markdown(stored["rows"], stored["seconds"], stored.get("scalar_table", []), _provenance(stored))
        )
        return
    old = {_key(r): r for r in _stored()["rows"]}
    if args.scalar_table:
        configs = list(
            itertools.product(["scalar"], SCALAR_TABLE["rates"], SCALAR_TABLE["steps"], SCALAR_TABLE["epsilons"])
        )
        update = {"scalar_table": run(configs, args.jobs)}
    else:
        configs = list(itertools.product(args.geometries, args.rates, args.steps, args.epsilons))
        families = None if args.families is None else tuple(dict.fromkeys(["gaussian", *args.families]))
        fresh = run(configs, args.jobs, old, families)
        update = {"fresh": fresh}
    stored = _stored()  # re-read: a concurrent run (the other mode) may have written its part meanwhile
    stored.pop("added_piecewise", None)  # replaced by the rows' ``computed_by``
    if "fresh" in update:
        rerun = set(map(_key, update["fresh"]))
        stored["rows"] = [*update.pop("fresh"), *(r for r in stored["rows"] if _key(r) not in rerun)]
    total = sum(r["seconds"] for r in stored["rows"])
    stored.update({**update, "version": __version__, "delta": DELTA, "objective": "std", "seconds": round(total, 1)})
    RESULTS.write_text(json.dumps(stored, indent=1))
    (ROOT / "docs" / "frontier.md").write_text(
        markdown(stored["rows"], total, stored.get("scalar_table", []), _provenance(stored))
    )


def _provenance(stored: dict) -> str:
    """Which lmodp version computed each family's rows (``--families`` reruns keep the other families' rows)."""
    counts = Counter((family, version) for r in stored["rows"] for family, version in r["computed_by"].items())
    versions = sorted({version for _, version in counts})
    if len(versions) == 1:
        return f"All rows were computed by lmodp {versions[0]}."
    parts = [
        f"{family}: " + ", ".join(f"{counts[family, v]} by {v}" for v in versions if counts[family, v])
        for family in ("gaussian", *NON_GAUSSIAN)
        if any(counts[family, v] for v in versions)
    ]
    return (
        "Rows per family by the lmodp version that computed them (cells were rerun family by family with "
        f"`--families`): {'; '.join(parts)}. See CHANGELOG.md for what changed between versions; every row is "
        "a sound calibration by the accountant of its version."
    )


def _stored() -> dict:
    """The stored JSON; a row without ``computed_by`` (written before it existed) is labelled with the file's
    version "or earlier" (such files were written by partial reruns too)."""
    stored = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"rows": []}
    for row in stored["rows"]:
        row.setdefault("computed_by", dict.fromkeys(row["std"], f"{stored['version']} or earlier"))
    return stored


if __name__ == "__main__":
    main()
