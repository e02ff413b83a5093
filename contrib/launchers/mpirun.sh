#!/bin/sh
# racefree stress makedirs across hosts, started by Open MPI's mpirun, then the
# merged verdict. Every rank races on the same shared tree; racefree takes its id
# from OMPI_COMM_WORLD_RANK and the ranks meet at a barrier file before racing.
#
#   SHARED=/mnt/nfs/racefree NP=16 MPIRUN_ARGS="--hostfile hosts" sh mpirun.sh
#
# SHARED    a directory every host mounts at the same path (NFS, Lustre, CephFS...)
# NP        how many ranks (instances) to start                         [4]
# RUN       a fresh name for this run: a reused barrier file is refused [date-pid]
# DURATION  seconds each rank races                                     [30]
# RACERS    racer threads in each rank                                  [4]
# MPIRUN_ARGS  more mpirun options: --hostfile, --map-by node; as root also
#           --allow-run-as-root (and --oversubscribe when NP exceeds the cores)
# RACEFREE  the racefree binary, the same path on every host            [racefree]
# KEEP      set to 1 to keep every round's tree in SHARED after the verdict
#
# Each rank races its control beside the shared rounds and keeps racing (up to 4 x
# DURATION) while it has not failed. The report removes each round's tree once it
# has verified it: SHARED keeps the reports, the barrier's files and verdict.json.
#
# Exit status: the report's (0 PASS, 1 FAIL, 4 INCONCLUSIVE: a rank's control never
# failed), or 1 when a rank failed.
set -eu
: "${SHARED:?set SHARED to a directory every host mounts}"
NP=${NP:-4}
RUN=${RUN:-$(date +%Y%m%d-%H%M%S)-$$}
DURATION=${DURATION:-30}
RACERS=${RACERS:-4}
RACEFREE=${RACEFREE:-racefree}
KEEP=${KEEP:-}

# Inside a Slurm allocation mpirun's ranks inherit the step's SLURM_PROCID, which
# racefree would read before OMPI_COMM_WORLD_RANK: drop it, so each rank is its own id.
launched=0
# shellcheck disable=SC2086 # MPIRUN_ARGS is a list of options
mpirun -np "$NP" ${MPIRUN_ARGS:-} \
  env -u SLURM_PROCID "$RACEFREE" stress makedirs --dir "$SHARED" \
  --barrier-file "$SHARED/go-$RUN" --expect "$NP" \
  --duration "$DURATION" --racers "$RACERS" || launched=$?

# The merged verdict over every rank's report-ID.json and the shared tree. A rank
# that died wrote no report, so mpirun's own status counts too.
"$RACEFREE" stress report ${KEEP:+--keep} "$SHARED/racefree-stress-go-$RUN" || exit $?
if [ "$launched" -ne 0 ]; then
  echo "mpirun.sh: mpirun exited $launched: a rank failed" >&2
  exit 1
fi
