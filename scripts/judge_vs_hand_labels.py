"""How far the judge agrees with the hand labels of data/hand-labels.json, from a run's judge cache.

    .venv/bin/python scripts/judge_vs_hand_labels.py                       # the latest full course run
    .venv/bin/python scripts/judge_vs_hand_labels.py --run runs/20261201-232605

No judge is started: each labelled answer's score is looked up in the run's ``judge_scores.jsonl`` (notebook
05 scores every test answer, so a run of the same answers holds them all) under the default prompt. Two
rows: the judge model alone (``model_score``) and the final score after the code checks (``score``: echo
and injection caps). Accuracy at 50: the judge's score >= 50 exactly when the label is "correct".
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from helpers.course import latest_run
from helpers.judge import PROMPTS, _cache_key, _read_cache, agreement
from helpers.review import hand_label_scores, load_hand_labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=None,
                        help="a course run folder (default: the latest full one)")
    parser.add_argument("--prompt", default="yes-no", help="the judge prompt whose scores to read")
    args = parser.parse_args()
    run = args.run or latest_run(fast=False)
    cache = _read_cache(run / "judge_scores.jsonl")
    judges = {v["judge"] for v in cache.values() if v.get("prompt") == args.prompt}
    if len(judges) != 1:
        raise SystemExit(f"{run}: expected scores of one judge under prompt {args.prompt!r}, "
                         f"found {judges or 'none'}")
    judge_name, fingerprint = judges.pop(), PROMPTS[args.prompt].fingerprint
    labels = load_hand_labels()
    human = hand_label_scores(labels)
    found = [cache.get(_cache_key(label, label["response"], judge_name, fingerprint)) for label in labels]
    print(f"{run.name}: {len(labels)} hand labels, {sum(f is None for f in found)} without a judge score "
          f"({judge_name}, prompt {args.prompt})")
    for field, what in (("model_score", "judge model alone"), ("score", "with the code checks")):
        pairs = [(f[field], h, label) for f, h, label in zip(found, human, labels)
                 if f and f.get(field) is not None]
        judged, hand = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
        agree = agreement(list(judged), list(hand))
        print(f"{what:>22}: n={agree['n']}, accuracy at 50 {agree['accuracy_at_50']:.1%}, "
              f"Cohen's kappa {agree['kappa']:.3f}, Spearman {agree['spearman']:.3f}; "
              f"mean score {judged.mean():.1f} (hand {hand.mean():.1f})")
        for kind in sorted({p[2]["kind"] for p in pairs}):
            part = [p for p in pairs if p[2]["kind"] == kind]
            mean, hand_mean = np.mean([p[0] for p in part]), np.mean([p[1] for p in part])
            print(f"{'':>24}{kind:>10}: n={len(part):2d}, mean {mean:5.1f} (hand {hand_mean:5.1f}), "
                  f"scored >= 50: {sum(p[0] >= 50 for p in part)}")


if __name__ == "__main__":
    main()
