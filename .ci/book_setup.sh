#!/usr/bin/env bash
# System packages the book needs in CI: Chromium for the browser tests (tests/test_book_browser.py:
# every page of the built book; tests/test_explorer.py: the in-browser explorers against PyTorch),
# driven headless over the DevTools protocol (tests/chromium_cdp.py).
# Everything else (jupyter-book, MathJax via sphinx-mathjax-offline, papermill, ...) comes from
# requirements.txt. No npm packages are needed: the book loads no widget JavaScript (the live
# ipywidgets explorers are replaced by hand-written scripts shipped in the fwbook package,
# src/fwbook/chapters/explorer_*.js), and MathJax ships inside the sphinx-mathjax-offline wheel.
# Idempotent; run as root (or with sudo available). Usage: bash .ci/book_setup.sh
set -euo pipefail

if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
    echo "book_setup: chromium already installed: $(chromium --version 2>/dev/null || chromium-browser --version)"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
        echo "book_setup: not root and no sudo: Chromium not installed; the browser tests will be skipped (and fail in CI)" >&2
        exit 0
    fi
    SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
# chromium: Debian's package (bookworm: 'chromium'); fonts so that pages and screenshots
# render text; no other browser is downloaded.
$SUDO apt-get install -y --no-install-recommends chromium fonts-dejavu-core
chromium --version
