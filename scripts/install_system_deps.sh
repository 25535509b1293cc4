#!/usr/bin/env bash
# Installs the FFmpeg shared libraries that TorchCodec loads (PyAV bundles its own FFmpeg and needs nothing).
# Idempotent; does nothing when the libraries are present. Needs root (or sudo) and apt-get.
set -euo pipefail
if ldconfig -p 2>/dev/null | grep -q 'libavcodec\.so\.'; then
  exit 0
fi
pkgs="libavcodec59 libavformat59 libavutil57 libswscale6 libswresample4 libavfilter8 libavdevice59"
if ! command -v apt-get >/dev/null 2>&1; then
  echo "note: no apt-get; install FFmpeg shared libraries yourself for the TorchCodec backend" >&2
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else
    echo "note: not root; TorchCodec tests will be skipped (install: $pkgs)" >&2; exit 0; fi
fi
echo "installing FFmpeg shared libraries for TorchCodec: $pkgs" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $pkgs >/dev/null
