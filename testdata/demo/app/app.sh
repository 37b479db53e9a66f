#!/bin/sh
# demo/app greets the name given on the command line.
echo "Hi ${1:-there}"
