#!/bin/bash
# Usage: scripts/long-reflections.sh PATH/TO/duet   (docs/benchmarks.md "Text writes among long reflections")
# 200 reflections of about 4,000 characters, then the time of one more `reflect`.
D=$1; H=$(mktemp -d)
$D --home $H init --name Alex > /dev/null
for i in $(seq 1 200); do
  T=$(python3 -c "import random;random.seed($i);print(''.join(random.choice('abcdefghijklmnop qrstuvwxyz') for _ in range(4000)))")
  $D --home $H reflect "$T" > /dev/null
done
start=$(date +%s.%N); $D --home $H reflect "one more" > /dev/null; end=$(date +%s.%N)
echo "$D: one reflect after 200 long ones: $(python3 -c "print(round($end-$start,3))") s"
rm -rf $H
