# Small helpers shared by the scripts (sourced, not run).

# mae PREDICTIONS.tsv: the mean absolute error of a `qdf predict` output (its 4th column,
# the error of the first property), to 4 decimals.
mae() { awk -F'\t' 'NR > 1 { s += ($4 < 0 ? -$4 : $4); n++ } END { printf "%.4f", s / n }' "$1"; }
