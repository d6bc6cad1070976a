#!/usr/bin/env bash
# Installs MPICH (the MPI that Microsoft.ML.Cbp's MPI binding targets: MPICH's ABI, integer handles) when it is
# missing: its launcher (mpiexec.hydra) and library (libmpich.so.12). Needs root and apt (Debian/Ubuntu); elsewhere
# it says what to install and exits 0, and the MPI tests report Inconclusive. Single-process training never needs MPI.
set -uo pipefail
if command -v mpiexec.hydra >/dev/null 2>&1 && ldconfig -p 2>/dev/null | grep -q 'libmpich\.so\.12'; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "install-mpi: MPICH is not installed and this is not root on an apt system; install mpich (e.g. 'sudo apt-get install mpich') to run the MPI tests." >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y --no-install-recommends mpich >/dev/null 2>&1; then
  apt-get update >/dev/null 2>&1 && apt-get install -y --no-install-recommends mpich >/dev/null 2>&1 \
    || echo "install-mpi: apt-get could not install mpich; the MPI tests will report Inconclusive." >&2
fi
exit 0
