"""Patient-matching benchmark: 10,000 PACS patients against 100,000 R4 patients (synthetic).

Prints build time, match time, total, decision counts, false auto-links, and peak memory
(tracemalloc and max RSS). Target: < 10 s total and < 500 MB on a 2-core machine.

    python bench/matching.py [--r4 100000] [--pacs 10000] [--seed 7]

Timing runs without tracemalloc (it slows allocation-heavy code several-fold); a second,
traced pass measures the Python heap peak of the same work.
"""

from __future__ import annotations

import argparse
import gc
import resource
import sys
import time
import tracemalloc
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.matching import IdRule, InMemoryLinks, Matcher, PatientIndex
from r4.records import PatientRecord
from testkit.synthetic import LabelledPacsPatient, SyntheticPopulation

ID_RULES = (IdRule(prefix="R4-", pad_width=8),)


def population(
    seed: int, r4_count: int, pacs_count: int
) -> tuple[Iterator[PatientRecord], list[PatientRecord]]:
    """A streamed R4 population and the list it fills, while streaming, with the patients
    the PACS will also know (every k-th record), so the whole R4 list is never held."""
    pop = SyntheticPopulation(seed)
    keep_every = max(1, r4_count // max(1, int(pacs_count * 0.8)))
    kept: list[PatientRecord] = []

    def stream() -> Iterator[PatientRecord]:
        for i, record in enumerate(pop.r4_records(r4_count)):
            if i % keep_every == 0 and len(kept) < int(pacs_count * 0.8):
                kept.append(record)
            yield record

    return stream(), kept


def pacs_patients(seed: int, kept: list[PatientRecord], total: int) -> list[LabelledPacsPatient]:
    pop = SyntheticPopulation(seed + 1)
    rng = pop.rng
    out = []
    for record in kept:
        if rng.random() < 0.35 and record.chart_number:
            out.append(pop.pacs_view(record, pop.rule_style_id(record.chart_number), "", True))
        else:
            out.append(pop.pacs_view(record, pop.foreign_id(), "OUTSIDE", False))
    while len(out) < total:
        # Strangers: people the practice does not know (the truth is "no R4 patient").
        stranger = pop.record(0, pop.person(), None)
        labelled = pop.pacs_view(stranger, pop.foreign_id(), "OUTSIDE", False)
        out.append(replace(labelled, true_r4_id=None))
    return out


def generation_only(seed: int, r4_count: int, pacs_count: int) -> float:
    """Seconds spent producing the synthetic stream alone, to subtract from the build time
    (the index is built from the stream as it is generated, so the two overlap)."""
    records, _ = population(seed, r4_count, pacs_count)
    t0 = time.perf_counter()
    for _record in records:
        pass
    return time.perf_counter() - t0


def run(seed: int, r4_count: int, pacs_count: int) -> dict[str, object]:
    records, kept = population(seed, r4_count, pacs_count)
    t0 = time.perf_counter()
    index = PatientIndex.build(records)
    t1 = time.perf_counter()
    pacs = pacs_patients(seed, kept, pacs_count)
    matcher = Matcher(index, InMemoryLinks(), ID_RULES)
    t2 = time.perf_counter()
    decisions = [(p, matcher.match(p.patient)) for p in pacs]
    t3 = time.perf_counter()
    return {
        "index": index,
        "build_s": t1 - t0,
        "match_s": t3 - t2,
        "decisions": decisions,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--r4", type=int, default=100_000)
    parser.add_argument("--pacs", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    result = run(args.seed, args.r4, args.pacs)
    decisions = result["decisions"]
    assert isinstance(decisions, list)
    kinds = Counter("auto-linked" if d.auto_linked else "review" for _, d in decisions)
    rules = Counter(str(d.rule) for _, d in decisions if d.auto_linked)
    false_links = sum(1 for p, d in decisions if d.auto_linked and d.r4_patient_id != p.true_r4_id)
    true_links = sum(1 for p, d in decisions if d.auto_linked and d.r4_patient_id == p.true_r4_id)
    with_truth = sum(1 for p, _ in decisions if p.true_r4_id is not None)
    build_s, match_s = float(result["build_s"]), float(result["match_s"])  # type: ignore[arg-type]
    rss_untraced = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    gen_s = generation_only(args.seed, args.r4, args.pacs)
    build_s -= gen_s
    print(f"R4 patients:        {args.r4:>10,}")
    print(f"PACS patients:      {args.pacs:>10,}  ({with_truth:,} with an R4 counterpart)")
    print(f"generating stream:  {gen_s:>10.2f} s  (synthetic data; not counted below)")
    print(f"index build:        {build_s:>10.2f} s")
    print(f"matching:           {match_s:>10.2f} s  ({1e6 * match_s / args.pacs:.0f} µs/patient)")
    print(f"total:              {build_s + match_s:>10.2f} s")
    print(f"decisions:          {dict(kinds)}  auto-links by rule: {dict(rules)}")
    print(
        f"true auto-links:    {true_links:>10,}  ({true_links / max(1, with_truth):.1%} of pairs)"
    )
    print(f"false auto-links:   {false_links:>10,}")
    print(f"index stats:        {result['index'].stats()}")  # type: ignore[attr-defined]

    del result, decisions
    gc.collect()
    tracemalloc.start()
    traced = run(args.seed, args.r4, args.pacs)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del traced
    rss_traced = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak traced memory: {peak / 2**20:>10.1f} MiB (tracemalloc, build + match)")
    print(f"max RSS:            {rss_untraced:>10.1f} MiB (whole process, untraced run)")
    print(f"max RSS:            {rss_traced:>10.1f} MiB (whole process, after traced run)")


if __name__ == "__main__":
    main()
