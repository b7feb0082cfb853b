#!/usr/bin/env bash
# Make sure the system programs the build needs are on PATH.
#
#   scripts/ensure-system-deps.sh dot [chromium]
#
# A missing program is installed with apt-get when we are root on a Debian-like
# system; otherwise the script stops and says what to install.
set -euo pipefail

# The Debian package of a program, and how to install it elsewhere. (A `case`, not an
# associative array: macOS still ships bash 3.2.)
debian_package() {
  case "$1" in
    dot) echo graphviz ;;
    chromium) echo chromium ;;
  esac
}
manual_hint() {
  case "$1" in
    dot) echo "Debian/Ubuntu: sudo apt-get install graphviz; macOS: brew install graphviz; Fedora: sudo dnf install graphviz" ;;
    chromium) echo "Debian/Ubuntu: sudo apt-get install chromium; macOS: brew install --cask chromium; or set CHROMIUM=/path/to/chrome" ;;
  esac
}

is_present() {
  # Chromium may also be given explicitly through $CHROMIUM.
  if [ "$1" = chromium ] && [ -n "${CHROMIUM:-}" ]; then
    [ -x "$CHROMIUM" ] && return 0
  fi
  command -v "$1" >/dev/null 2>&1
}

updated=no
for program in "$@"; do
  if is_present "$program"; then
    continue
  fi
  package=$(debian_package "$program")
  if [ -z "$package" ]; then
    echo "ensure-system-deps: unknown program '$program'" >&2
    exit 2
  fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "ensure-system-deps: '$program' is missing; installing the Debian package '$package'"
    export DEBIAN_FRONTEND=noninteractive
    if [ "$updated" = no ]; then
      apt-get update -q
      updated=yes
    fi
    apt-get install -y -q "$package"
    if ! is_present "$program"; then
      echo "ensure-system-deps: installed '$package' but '$program' is still not on PATH" >&2
      exit 1
    fi
  else
    echo "ensure-system-deps: the program '$program' is required but not installed." >&2
    echo "  Install it ($(manual_hint "$program")) and run make again." >&2
    exit 1
  fi
done
