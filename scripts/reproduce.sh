#!/usr/bin/env bash
# The main job: reproduce the paper's Table 6 (backdoor attack on CE, GCE and DAL).
#
#   bash scripts/reproduce.sh                     # small preset: 2-core CPU, Fashion-MNIST
#   bash scripts/reproduce.sh --preset paper      # the paper's setup (GPU, downloads CIFAR)
#   bash scripts/reproduce.sh --preset ci         # 6 epochs instead of 18 (about 11 minutes)
#   bash scripts/reproduce.sh --grid attacks      # 6 losses x 7 attacks x 3 seeds (126 runs,
#                                                 # 5 epochs each at small/ci)
#   bash scripts/reproduce.sh --grid dose         # poison budget: 7 budgets x 3 losses x 2
#                                                 # triggers x 3 seeds (126 runs, 5 epochs)
#   bash scripts/reproduce.sh --grid table2       # label noise (grid table2-small): 6 losses x
#                                                 # clean + 4 noise settings x 3 seeds (90 runs)
#   bash scripts/reproduce.sh --grid table2 --epochs 14   # the same grid trained 14 epochs
#   bash scripts/reproduce.sh --compile           # torch.compile every run: ~1.4x per epoch on
#                                                 # a CPU, another floating-point path
#
# Options: --grid table6|table2|attacks|dose (default table6), --preset small|paper|ci, --jobs N
# (concurrent CPU runs, default: number of cores, at most 4), --runs-per-gpu K (default 4),
# --epochs N (train N epochs instead of the preset's: a sweep's --set epochs=N, in a store and
# outputs of their own, suffixed _eN), --compile (a sweep's --set compile=true: the same runs
# and store, computed on another floating-point path; the first runs compile, later ones reuse
# PyTorch's inductor cache), --db FILE (default results/<grid>_<preset>.db, and
# results/beyond_<preset>.db for attacks and dose, which share their 100-poison badnets/weng
# runs; outputs go to results/<grid>_<preset>.*).
# Finished runs are kept in the results store: re-running the script only runs what is missing,
# and an interrupted sweep resumes from its checkpoints.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

grid=table6
preset=small
jobs=""
runs_per_gpu=4
db=""
epochs=""
compile=()
while [ $# -gt 0 ]; do
    case "$1" in
        --grid) grid="$2"; shift 2 ;;
        --preset) preset="$2"; shift 2 ;;
        --jobs) jobs="$2"; shift 2 ;;
        --runs-per-gpu) runs_per_gpu="$2"; shift 2 ;;
        --db) db="$2"; shift 2 ;;
        --epochs) epochs="$2"; shift 2 ;;
        --compile) compile=(--set compile=true); shift ;;
        -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
        *) echo "reproduce.sh: unknown option '$1'; allowed: --grid, --preset, --jobs," \
                "--runs-per-gpu, --epochs, --compile, --db" >&2
           exit 2 ;;
    esac
done
case "$grid" in
    table6|attacks|dose|table2-small) ;;
    table2) grid=table2-small ;;  # the full 13-loss x 8-setting table2 is `dal-backdoor sweep table2`
    *) echo "reproduce.sh: unknown grid '$grid'; allowed: table6, table2, attacks, dose" >&2
       exit 2 ;;
esac
case "$preset" in
    small|paper|ci) ;;
    *) echo "reproduce.sh: unknown preset '$preset'; allowed: small, paper, ci" >&2; exit 2 ;;
esac
if [ -z "$jobs" ]; then
    jobs="$(nproc 2>/dev/null || echo 1)"
    [ "$jobs" -gt 4 ] && jobs=4
fi
suffix=""
set_epochs=()
if [ -n "$epochs" ]; then
    case "$epochs" in
        ''|*[!0-9]*|0) echo "reproduce.sh: --epochs '$epochs' is not a positive whole number" >&2
                       exit 2 ;;
    esac
    suffix="_e${epochs}"
    set_epochs=(--set "epochs=$epochs")
fi
case "$grid" in
    attacks|dose) db="${db:-results/beyond_${preset}${suffix}.db}" ;;  # shared runs run once
    *) db="${db:-results/${grid}_${preset}${suffix}.db}" ;;
esac
data_root="${DAL_BACKDOOR_DATA:-data}"

# shellcheck source=scripts/setup_env.sh
source "$root/scripts/setup_env.sh"
setup_env "plot"

fashion_dir=/usr/share/datasets/fashion-mnist
ensure_fashion_mnist() {
    if [ -d "$fashion_dir" ] || [ -e "$data_root/train-images-idx3-ubyte.gz" ] \
        || [ -d "$data_root/FashionMNIST/raw" ]; then
        return 0
    fi
    echo "[reproduce] Fashion-MNIST not found; installing the Debian package dataset-fashion-mnist"
    local sudo=""
    [ "$(id -u)" != "0" ] && command -v sudo >/dev/null 2>&1 && sudo="sudo -n"
    if command -v apt-get >/dev/null 2>&1 \
        && { $sudo apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 \
             || { $sudo apt-get update -q >/dev/null 2>&1 \
                  && $sudo apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1; }; }; then
        return 0
    fi
    echo "[reproduce] trying a download through torchvision instead"
    if dal-backdoor download fashion-mnist --root "$data_root"; then
        return 0
    fi
    echo "reproduce.sh: Fashion-MNIST is missing. Install it with" \
         "'sudo apt-get install dataset-fashion-mnist' (files go to $fashion_dir) or put the" \
         "four *-idx?-ubyte(.gz) files into $data_root/ and run again." >&2
    exit 1
}

if [ "$preset" = "paper" ] && [ "$grid" = "table6" ]; then
    dal-backdoor download cifar10 cifar100 --root "$data_root"
elif [ "$preset" = "paper" ]; then
    dal-backdoor download cifar10 --root "$data_root"
else
    ensure_fashion_mnist
fi

mkdir -p "$(dirname "$db")"
start=$(date +%s)
dal-backdoor sweep "$grid" --preset "$preset" --db "$db" --root "$data_root" \
    --jobs "$jobs" --runs-per-gpu "$runs_per_gpu" ${set_epochs[@]+"${set_epochs[@]}"} \
    ${compile[@]+"${compile[@]}"}
echo "[reproduce] sweep took $(( $(date +%s) - start )) s"

out="results/${grid}_${preset}${suffix}"
dal-backdoor table "$grid" --preset "$preset" --db "$db"
dal-backdoor table "$grid" --preset "$preset" --db "$db" --format md --out "$out.md"
dal-backdoor table "$grid" --preset "$preset" --db "$db" --format json --out "$out.json"
dal-backdoor table "$grid" --preset "$preset" --db "$db" --format md --plot "${out}_plots" >/dev/null
echo "[reproduce] table: $out.md (and .json); plots: ${out}_plots/; results store: $db"
