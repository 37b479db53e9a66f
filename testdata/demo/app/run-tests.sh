#!/bin/sh
# Runs every tests/*_test.sh from the top of the repository; the first
# failure fails the run.
set -e
for t in tests/*_test.sh; do
	echo "--- $t"
	sh "$t"
done
echo PASS
