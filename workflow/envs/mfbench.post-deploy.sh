#!/usr/bin/env bash
# Snakemake runs this inside the new environment, from the directory it runs in (the checkout).
set -euo pipefail
pip install -e .
