#!/usr/bin/env bash
# Removes a host made by start-host.sh: its container and its network.
name=$1
docker rm -f -v "$name" >/dev/null 2>&1 || true
docker network rm "$name" >/dev/null 2>&1 || true
