# Sourced by setup.sh and bench/run.sh: installs the Debian packages that are missing.
#
#   install_missing_packages <caller name> <package>...
#
# Asks dpkg which packages are installed and runs apt-get only for the missing ones (nothing when
# all are there), as root or through sudo; without either it says what to run and exits 1.
install_missing_packages() {
  local who="$1" missing=() pkg
  shift
  for pkg in "$@"; do
    if [[ "$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null)" != installed ]]; then
      missing+=("$pkg")
    fi
  done
  if ((${#missing[@]} == 0)); then
    return
  fi
  echo "$who: installing ${missing[*]}"
  local sudo=()
  if ((EUID != 0)); then
    if ! command -v sudo >/dev/null; then
      echo "$who: not root and no sudo; as root run: apt-get install ${missing[*]}" >&2
      exit 1
    fi
    sudo=(sudo)
  fi
  "${sudo[@]}" apt-get update
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
}
