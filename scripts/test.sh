#!/usr/bin/env bash
# The test command (`npm test`): builds, then runs every jest project (unit, remote, twin, e2e)
# against the services `scripts/services.sh start` brought up. Extra arguments go to jest,
# e.g. `npm test -- --selectProjects unit`.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(scripts/services.sh env)"
npm run build
# One test file at a time: the suites share one Docker engine, one registry and the loop devices.
exec node --experimental-vm-modules node_modules/jest/bin/jest.js --runInBand "$@"
