"""Golden tests: `--update-golden` rewrites out.yaml files and removes orphans."""
