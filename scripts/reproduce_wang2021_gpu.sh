#!/usr/bin/env bash
# Reproduce the CIFAR-FS and FC100 cells of Wang, Zhao & Li (ICML 2021) on GPUs:
#
#   1. download  the official CIFAR-100 python archive (cifar-100-python.tar.gz from
#                $URL) and check its md5; skipped when $CIFAR100 names a copy you have,
#                or when the archive is already in $DOWNLOADS with the right md5;
#   2. prepare   CIFAR-FS and FC100 from it (`harness data prepare`), each only when
#                `harness data verify` does not already accept it, then verify both;
#   3. run       the suite's cells for those datasets (suites/wang2021.yaml: 6 methods x
#                1/5 shots x 3 seeds per dataset, 1 GPU per run). Resumable: finished runs
#                are skipped, so rerunning this script after an interruption (or to
#                follow Slurm jobs) only runs what is left;
#   4. report    `harness report` of those cells (also results/wang2021/REPORT.md).
#
#   bash scripts/reproduce_wang2021_gpu.sh
#   CLUSTER=slurm PARTITION=gpu bash scripts/reproduce_wang2021_gpu.sh      # job arrays, then returns
#   CIFAR100=~/downloads/cifar-100-python.tar.gz STAGES="prepare" bash scripts/reproduce_wang2021_gpu.sh
#
# Environment (all optional):
#   DATA          data root (default $HARNESS_DATA, else ~/.cache/harness/data)
#   RESULTS       results folder (default $HARNESS_RESULTS, else ./results)
#   CIFAR100      a cifar-100-python.tar.gz or cifar-100-python folder you already have
#                 (no download; its md5 is not enforced: `prepare` checks the content)
#   DOWNLOADS     where the archive is downloaded (default $DATA/downloads)
#   CLUSTER       local (default: this machine's GPUs, waits until done) | slurm (submits
#                 job arrays and returns; WAIT=1 follows them until they end)
#   MAX_PARALLEL  runs at once (local: default, one per free GPU) / tasks per array (slurm)
#   PARTITION, ACCOUNT, QOS   Slurm placement (default: the cluster's)
#   STAGES        which of "download prepare run report" to do (default: all four)
set -euo pipefail
cd "$(dirname "$0")/.."

URL=https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz
MD5=eb9058c3a382ffc7106e4002c42a8d85
DATASETS=(cifar_fs fc100)
SUITE=suites/wang2021.yaml

DATA=${DATA:-${HARNESS_DATA:-$HOME/.cache/harness/data}}
export HARNESS_DATA=$DATA                   # the runs read their data from here
export HARNESS_RESULTS=${RESULTS:-${HARNESS_RESULTS:-results}}
DOWNLOADS=${DOWNLOADS:-$DATA/downloads}
CLUSTER=${CLUSTER:-local}
STAGES=${STAGES:-download prepare run report}
HARNESS=${HARNESS:-harness}

case $CLUSTER in local|slurm) ;; *) echo "CLUSTER must be local or slurm, not $CLUSTER" >&2; exit 2 ;; esac
wants() { [[ " $STAGES " == *" $1 "* ]]; }
say() { echo "== $*"; }

archive=${CIFAR100:-$DOWNLOADS/cifar-100-python.tar.gz}

md5_of() { md5sum "$1" | cut -d' ' -f1; }

download() {
    if [[ -n ${CIFAR100:-} ]]; then
        [[ -e $CIFAR100 ]] || { echo "CIFAR100=$CIFAR100 does not exist" >&2; exit 2; }
        say "using $CIFAR100 (no download)"
        return
    fi
    if [[ -f $archive && $(md5_of "$archive") == "$MD5" ]]; then
        say "$archive is already here (md5 $MD5)"
        return
    fi
    mkdir -p "$DOWNLOADS"
    say "downloading $URL"
    curl -fL --retry 3 --continue-at - -o "$archive.part" "$URL"
    local got
    got=$(md5_of "$archive.part")
    if [[ $got != "$MD5" ]]; then
        rm -f "$archive.part"
        echo "downloaded archive has md5 $got, not the official $MD5: removed it; rerun to download again" >&2
        exit 1
    fi
    mv "$archive.part" "$archive"
}

prepare() {
    for dataset in "${DATASETS[@]}"; do
        if "$HARNESS" data verify "$dataset" --root "$DATA" >/dev/null 2>&1; then
            say "$dataset is already prepared in $DATA"
        else
            [[ -e $archive ]] || { echo "no CIFAR-100 source at $archive (run the download stage or set CIFAR100)" >&2; exit 2; }
            say "preparing $dataset from $archive"
            "$HARNESS" data prepare "$dataset" --source "$archive" --root "$DATA"
        fi
        say "verifying $dataset"
        "$HARNESS" data verify "$dataset" --root "$DATA"
    done
}

run() {
    local args=(--filter "dataset=$(IFS=,; echo "${DATASETS[*]}")" --cluster "$CLUSTER")
    [[ -n ${MAX_PARALLEL:-} ]] && args+=(--max-parallel "$MAX_PARALLEL")
    [[ -n ${PARTITION:-} ]] && args+=(--partition "$PARTITION")
    [[ -n ${ACCOUNT:-} ]] && args+=(--account "$ACCOUNT")
    [[ -n ${QOS:-} ]] && args+=(--qos "$QOS")
    [[ $CLUSTER == slurm && ${WAIT:-0} == 1 ]] && args+=(--wait)
    say "$HARNESS run $SUITE ${args[*]}"
    "$HARNESS" run "$SUITE" "${args[@]}"
}

report() {
    say "report"
    "$HARNESS" report "$SUITE" --filter "dataset=$(IFS=,; echo "${DATASETS[*]}")"
}

wants download && download
wants prepare && prepare
wants run && run
wants report && report
