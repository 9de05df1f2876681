# Small helpers shared by the scripts (sourced, not run).

# mae PREDICTIONS.tsv: the mean absolute error of a `qdf predict` output (its 4th column,
# the error of the first property), to 4 decimals.
mae() { awk -F'\t' 'NR > 1 { s += ($4 < 0 ? -$4 : $4); n++ } END { printf "%.4f", s / n }' "$1"; }

# pilot_subset DATASET_DIR OUT_DIR: the pilots' fixed subset of a data set, once (2,000
# training and 500 validation molecules drawn with seed 2026; test.txt is a copy of
# val.txt, so that qdf train finds one and no test molecule is used).
pilot_subset() {
    [ -f "$2/train.txt" ] && return 0
    mkdir -p "$2"
    python3 - "$1" "$2" <<'PY'
import random, sys
src, dst = sys.argv[1], sys.argv[2]
def molecules(split):
    return [m for m in open(f"{src}/{split}.txt").read().strip().split("\n\n") if m.strip()]
rng = random.Random(2026)
train = rng.sample(molecules("train"), 2000)
val = rng.sample(molecules("val"), 500)
for name, ms in [("train", train), ("val", val), ("test", val)]:
    open(f"{dst}/{name}.txt", "w").write("\n\n".join(ms) + "\n")
PY
}

# orientation_stats GIVEN.tsv ROTATED.tsv: two `qdf predict` outputs of the same molecules
# (as given, and turned): molecules, MAE of each, and the mean, 99th percentile and largest
# |prediction(given) − prediction(rotated)| (eV), tab-separated.
orientation_stats() {
    python3 - "$1" "$2" <<'PY'
import sys
def rows(path):
    with open(path) as f:
        next(f)
        return [line.rstrip("\n").split("\t") for line in f if line.strip()]
given, rotated = rows(sys.argv[1]), rows(sys.argv[2])
assert [r[0] for r in given] == [r[0] for r in rotated], "the two files list different molecules"
mae = lambda rs: sum(abs(float(r[3])) for r in rs) / len(rs)
d = sorted(abs(float(a[2]) - float(b[2])) for a, b in zip(given, rotated))
p99 = d[min(len(d) - 1, int(0.99 * len(d)))]
print("\t".join([str(len(d)), f"{mae(given):.4f}", f"{mae(rotated):.4f}", f"{sum(d) / len(d):.5f}", f"{p99:.5f}", f"{d[-1]:.5f}"]))
PY
}
