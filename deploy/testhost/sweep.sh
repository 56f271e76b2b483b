#!/usr/bin/env bash
# Removes every container and network made by the test harness (label
# moor.test): what a killed test run can leave behind.
set -euo pipefail
containers=$(docker ps -aq --filter label=moor.test)
[ -z "$containers" ] || docker rm -f -v $containers >/dev/null
networks=$(docker network ls -q --filter label=moor.test)
[ -z "$networks" ] || docker network rm $networks >/dev/null
