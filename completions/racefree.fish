# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_racefree_global_optspecs
    string join \n h/help V/version
end

function __fish_racefree_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_racefree_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_racefree_using_subcommand
    set -l cmd (__fish_racefree_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c racefree -n "__fish_racefree_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c racefree -n "__fish_racefree_needs_command" -s V -l version -d 'Print version'
complete -c racefree -n "__fish_racefree_needs_command" -f -a "makedirs" -d 'Create directories and their missing ancestors, safely under concurrency'
complete -c racefree -n "__fish_racefree_needs_command" -f -a "ident" -d 'RFC 1413 ident: look up a connection\'s owner, serve identd, or query one'
complete -c racefree -n "__fish_racefree_needs_command" -f -a "stress" -d 'Run parallel racers against every command and verify every answer'
complete -c racefree -n "__fish_racefree_needs_command" -f -a "lock" -d 'Run a command while holding a file lock (flock(1) without its traps)'
complete -c racefree -n "__fish_racefree_needs_command" -f -a "counter" -d 'Add to a number stored in a file, atomically, and print the new value'
complete -c racefree -n "__fish_racefree_needs_command" -f -a "write" -d 'Replace a file\'s content with standard input, atomically and durably'
complete -c racefree -n "__fish_racefree_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c racefree -n "__fish_racefree_using_subcommand makedirs" -s m -l mode -d 'Mode of each leaf this call creates, as GNU mkdir -m gives it: octal (755, 00755) or chmod(1)\'s symbolic grammar (u=rwx,g=rx,o=, a+X, go-w, -w, =rx, +t); a clause without u/g/o/a is limited by the umask, and \'=\' grants only what it names' -r
complete -c racefree -n "__fish_racefree_using_subcommand makedirs" -l beneath -d 'Resolve each PATH relative to DIR and never leave DIR (openat2 RESOLVE_BENEATH): \'..\' and symlinks that would escape are errors. Each new directory is resolved again from DIR after mkdir; if a directory the walk held was moved out of DIR meanwhile, the one just made (outside) is removed again and the PATH fails: no directory this call made is left outside DIR, unless something was put into it in that instant (the error then says so)' -r -F
complete -c racefree -n "__fish_racefree_using_subcommand makedirs" -l from -d 'Read paths from FILE (\'-\' for standard input), one per line, after any PATH arguments. Read as a stream, 4096 paths at a time, so memory stays flat however long the list; an entry is at most 1 MiB. The first bad entry (empty, holding a NUL, too long) is a usage error naming its position: the paths before it are made and reported, none after it' -r -F
complete -c racefree -n "__fish_racefree_using_subcommand makedirs" -s j -l jobs -d 'How many paths to work on at once [default: the number of cores]. Never more threads than there are paths, nor than 4 per core (at least 64)' -r
complete -c racefree -n "__fish_racefree_using_subcommand makedirs" -l attempts -d 'How many times to start over when the tree changes under the walk' -r
complete -c racefree -n "__fish_racefree_using_subcommand makedirs" -s v -l verbose -d 'Print "racefree: created directory \'P\'" for each directory this process created. Names are quoted as GNU mkdir -v quotes them in the C locale: \'nl\'$\'\\n\'\'x\''
complete -c racefree -n "__fish_racefree_using_subcommand makedirs" -l no-symlinks -d 'Refuse every symlink in the path; walk one component at a time with openat(O_NOFOLLOW) and mkdirat from the first component. Safe in world-writable directories, where a component could be swapped for a symlink mid-walk'
complete -c racefree -n "__fish_racefree_using_subcommand makedirs" -l exclusive -d 'Ancestors may already exist, but the leaf must be created by this call (the mkdir-as-a-lock idiom); exit 3 if it already exists'
complete -c racefree -n "__fish_racefree_using_subcommand makedirs" -s 0 -l null -d 'With --from: paths are separated by NUL bytes, not newlines'
complete -c racefree -n "__fish_racefree_using_subcommand makedirs" -l json -d 'Print one JSON object per path on stdout: path, directory, created, retries, error. Lossless: a path that is not UTF-8 is written as {"bytes_hex": "<its bytes in hex>"}'
complete -c racefree -n "__fish_racefree_using_subcommand makedirs" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c racefree -n "__fish_racefree_using_subcommand makedirs" -s V -l version -d 'Print version'
complete -c racefree -n "__fish_racefree_using_subcommand ident; and not __fish_seen_subcommand_from lookup serve query help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c racefree -n "__fish_racefree_using_subcommand ident; and not __fish_seen_subcommand_from lookup serve query help" -s V -l version -d 'Print version'
complete -c racefree -n "__fish_racefree_using_subcommand ident; and not __fish_seen_subcommand_from lookup serve query help" -f -a "lookup" -d 'Print the user that owns a TCP connection, matched on its 4-tuple only'
complete -c racefree -n "__fish_racefree_using_subcommand ident; and not __fish_seen_subcommand_from lookup serve query help" -f -a "serve" -d 'Serve RFC 1413 ident under inetd, systemd socket activation, or standalone'
complete -c racefree -n "__fish_racefree_using_subcommand ident; and not __fish_seen_subcommand_from lookup serve query help" -f -a "query" -d 'Ask a host\'s identd who owns a connection'
complete -c racefree -n "__fish_racefree_using_subcommand ident; and not __fish_seen_subcommand_from lookup serve query help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c racefree -n "__fish_racefree_using_subcommand ident; and __fish_seen_subcommand_from lookup" -l source -d 'Where to read the kernel\'s socket table' -r -f -a "proc\t'`/proc/net/tcp` and `/proc/net/tcp6`, scanned for the tuple: works in any container and kernel; each read costs time in proportion to the sockets on the host (the kernel formats every one), shared by the lookups that arrive together'
netlink\t'The kernel\'s sock_diag exact lookup: one request, constant time whatever the number of sockets; needs the tcp_diag module, which some sandboxes block'
auto\t'Netlink, falling back to /proc when netlink sock_diag is unavailable'"
complete -c racefree -n "__fish_racefree_using_subcommand ident; and __fish_seen_subcommand_from lookup" -l forward -d 'With --nat: ask the identd of a host behind this one (not a container here) on PORT, and relay its answer (ident serve --user makes that query as the user; only reading conntrack, to know whom to ask, stays privileged)' -r
complete -c racefree -n "__fish_racefree_using_subcommand ident; and __fish_seen_subcommand_from lookup" -l numeric -d 'Print the uid instead of the user name'
complete -c racefree -n "__fish_racefree_using_subcommand ident; and __fish_seen_subcommand_from lookup" -l json -d 'Print uid, user, state, inode and source as one JSON object'
complete -c racefree -n "__fish_racefree_using_subcommand ident; and __fish_seen_subcommand_from lookup" -l nat -d 'Answer for connections this host translated (masquerade, SNAT): look the conntrack entry up, then the container holding the original connection (needs root)'
complete -c racefree -n "__fish_racefree_using_subcommand ident; and __fish_seen_subcommand_from lookup" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c racefree -n "__fish_racefree_using_subcommand ident; and __fish_seen_subcommand_from lookup" -s V -l version -d 'Print version'
complete -c racefree -n "__fish_racefree_using_subcommand ident; and __fish_seen_subcommand_from serve" -l listen -d 'Standalone: listen on ADDR:PORT ([V6ADDR]:PORT for IPv6; port 0 picks one); repeatable' -r
complete -c racefree -n "__fish_racefree_using_subcommand ident; and __fish_seen_subcommand_from serve" -l mode -d 'How the server was started' -r -f -a "auto\t'systemd if LISTEN_FDS is for us, else standalone if --listen is given, else by stdin'
inetd-nowait\t'stdin is one accepted connection: serve it, then exit'
inetd-wait\t'stdin is a listening socket: accept on it'
systemd\t'sockets passed as fds 3.. (LISTEN_FDS, LISTEN_PID)'
standalone\t'bind every --listen address here'"
complete -c racefree -n "__fish_racefree_using_subcommand ident; and __fish_seen_subcommand_from serve" -l max-conns -d 'Standalone and inetd wait: connections served at once; more are closed at once' -r
complete -c racefree -n "__fish_racefree_using_subcommand ident; and __fish_seen_subcommand_from serve" -l timeout -d 'Seconds a request line may take to arrive in full, counted from the previous one (RFC 1413 suggests 60 to 180)' -r
complete -c racefree -n "__fish_racefree_using_subcommand ident; and __fish_seen_subcommand_from serve" -l user -d 'After binding, run everything that reads the network as this user (its uid and gid, no other group, no capability; verified). A forked helper alone stays root, for one question: who owns a connection and may they be named, since ~/.noident sits in homes often closed (0700) to anyone but their owner and root. The helper takes only the two ports and the ident connection itself, and answers only about that connection\'s own addresses. With --nat and --proxy the helper also resolves what this host\'s own table lacks (conntrack, containers\' tables and their /etc/passwd: root\'s to read). With --forward the helper only says which host and ports to ask, since only conntrack, read as root, knows; the query to that host and its reply (network input) are made and parsed as this user, and a host that never answers holds no helper worker' -r
complete -c racefree -n "__fish_racefree_using_subcommand ident; and __fish_seen_subcommand_from serve" -l hide -d 'Answer HIDDEN-USER for this user (name or uid); repeatable' -r
complete -c racefree -n "__fish_racefree_using_subcommand ident; and __fish_seen_subcommand_from serve" -l source -d 'Where to read the kernel\'s socket table: proc suits hosts with up to a few thousand sockets; with more, or many queries a second, use netlink (bench/RESULTS-identd.md)' -r -f -a "proc\t'`/proc/net/tcp` and `/proc/net/tcp6`, scanned for the tuple: works in any container and kernel; each read costs time in proportion to the sockets on the host (the kernel formats every one), shared by the lookups that arrive together'
netlink\t'The kernel\'s sock_diag exact lookup: one request, constant time whatever the number of sockets; needs the tcp_diag module, which some sandboxes block'
auto\t'Netlink, falling back to /proc when netlink sock_diag is unavailable'"
complete -c racefree -n "__fish_racefree_using_subcommand ident; and __fish_seen_subcommand_from serve" -l forward -d 'With --nat: ask the identd of a host behind this one (not a container here) on PORT, and relay its answer (ident serve --user makes that query as the user; only reading conntrack, to know whom to ask, stays privileged)' -r
complete -c racefree -n "__fish_racefree_using_subcommand ident; and __fish_seen_subcommand_from serve" -l proxy -d 'Answer queries forwarded by this NAT host (`racefree ident serve --nat --forward` or oidentd -f) about this host\'s connections by ports alone; repeatable' -r
complete -c racefree -n "__fish_racefree_using_subcommand ident; and __fish_seen_subcommand_from serve" -l log -d 'Where to log queries and errors [default: syslog under inetd and systemd, stderr standalone]' -r -f -a "syslog\t'The local syslog daemon (facility daemon); silently nothing if there is none'
stderr\t'Standard error (refused in inetd and systemd modes, where fd 2 may be the socket)'
none\t'Nowhere'"
complete -c racefree -n "__fish_racefree_using_subcommand ident; and __fish_seen_subcommand_from serve" -l hide-all -d 'Answer HIDDEN-USER for everyone'
complete -c racefree -n "__fish_racefree_using_subcommand ident; and __fish_seen_subcommand_from serve" -l numeric -d 'Answer `USERID : OTHER : <uid>` instead of the user name'
complete -c racefree -n "__fish_racefree_using_subcommand ident; and __fish_seen_subcommand_from serve" -l nat -d 'Answer for connections this host translated (masquerade, SNAT): look the conntrack entry up, then the container holding the original connection (needs root)'
complete -c racefree -n "__fish_racefree_using_subcommand ident; and __fish_seen_subcommand_from serve" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c racefree -n "__fish_racefree_using_subcommand ident; and __fish_seen_subcommand_from serve" -s V -l version -d 'Print version'
complete -c racefree -n "__fish_racefree_using_subcommand ident; and __fish_seen_subcommand_from query" -l port -d 'identd\'s port on HOST' -r
complete -c racefree -n "__fish_racefree_using_subcommand ident; and __fish_seen_subcommand_from query" -l timeout -d 'Give up after this many seconds (connect, send and reply together)' -r
complete -c racefree -n "__fish_racefree_using_subcommand ident; and __fish_seen_subcommand_from query" -l bind -d 'Connect from this local address (identd answers only about connections of the address it is asked from)' -r
complete -c racefree -n "__fish_racefree_using_subcommand ident; and __fish_seen_subcommand_from query" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c racefree -n "__fish_racefree_using_subcommand ident; and __fish_seen_subcommand_from query" -s V -l version -d 'Print version'
complete -c racefree -n "__fish_racefree_using_subcommand ident; and __fish_seen_subcommand_from help" -f -a "lookup" -d 'Print the user that owns a TCP connection, matched on its 4-tuple only'
complete -c racefree -n "__fish_racefree_using_subcommand ident; and __fish_seen_subcommand_from help" -f -a "serve" -d 'Serve RFC 1413 ident under inetd, systemd socket activation, or standalone'
complete -c racefree -n "__fish_racefree_using_subcommand ident; and __fish_seen_subcommand_from help" -f -a "query" -d 'Ask a host\'s identd who owns a connection'
complete -c racefree -n "__fish_racefree_using_subcommand ident; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and not __fish_seen_subcommand_from makedirs ident counter write lock exec report worker rmw help" -l duration -d 'Seconds for each arm, and on while its control has not failed: up to 4 x S' -r
complete -c racefree -n "__fish_racefree_using_subcommand stress; and not __fish_seen_subcommand_from makedirs ident counter write lock exec report worker rmw help" -l racers -d 'Racers per arm [default: 4 x cores]' -r
complete -c racefree -n "__fish_racefree_using_subcommand stress; and not __fish_seen_subcommand_from makedirs ident counter write lock exec report worker rmw help" -l processes -d 'Racers are separate processes of this binary instead of threads'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and not __fish_seen_subcommand_from makedirs ident counter write lock exec report worker rmw help" -l no-control -d 'Race no control arm beside each arm: the verdict is then at best "PASS, no control ran"'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and not __fish_seen_subcommand_from makedirs ident counter write lock exec report worker rmw help" -l json -d 'Print the report as JSON on stdout'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and not __fish_seen_subcommand_from makedirs ident counter write lock exec report worker rmw help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and not __fish_seen_subcommand_from makedirs ident counter write lock exec report worker rmw help" -s V -l version -d 'Print version'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and not __fish_seen_subcommand_from makedirs ident counter write lock exec report worker rmw help" -f -a "makedirs" -d 'Racers build the same deep trees at once; every round verified exactly'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and not __fish_seen_subcommand_from makedirs ident counter write lock exec report worker rmw help" -f -a "ident" -d 'Racers look up loopback connections held in every TCP state'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and not __fish_seen_subcommand_from makedirs ident counter write lock exec report worker rmw help" -f -a "counter" -d 'Racers take numbers from one counter file; all distinct, exactly 1..total'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and not __fish_seen_subcommand_from makedirs ident counter write lock exec report worker rmw help" -f -a "write" -d 'Writers replace one file while readers check every read is one whole version'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and not __fish_seen_subcommand_from makedirs ident counter write lock exec report worker rmw help" -f -a "lock" -d 'Racers increment one counter, each read-modify-write under racefree lock'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and not __fish_seen_subcommand_from makedirs ident counter write lock exec report worker rmw help" -f -a "exec" -d 'Race your own command: many copies at once, judged against a sequential run'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and not __fish_seen_subcommand_from makedirs ident counter write lock exec report worker rmw help" -f -a "report" -d 'Merge the reports instances wrote to a shared tree into one verdict'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and not __fish_seen_subcommand_from makedirs ident counter write lock exec report worker rmw help" -f -a "worker" -d 'One racer process (started by --processes; not for direct use)'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and not __fish_seen_subcommand_from makedirs ident counter write lock exec report worker rmw help" -f -a "rmw" -d 'One locked read-modify-write (the COMMAND of stress lock; not for direct use)'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and not __fish_seen_subcommand_from makedirs ident counter write lock exec report worker rmw help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from makedirs" -l depth -d 'Levels below each round\'s directory' -r
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from makedirs" -l fanout -d 'Subdirectories per level (fanout^depth leaf paths per round, at most 100000)' -r
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from makedirs" -l dir -d 'The tree under test (any mount, network filesystems included); it must exist. The run works in a new subdirectory it creates there [default: $TMPDIR]' -r -F
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from makedirs" -l racers -d 'How many racers [default: 4 x cores]' -r
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from makedirs" -l rounds -d 'Run R rounds, and more while the control has not failed: up to 4 x R' -r
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from makedirs" -l duration -d 'Run rounds until S seconds have passed (at least one round), and on while the control has not failed: up to 4 x S' -r
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from makedirs" -l barrier-file -d 'Across hosts: wait at this file on the shared tree until --expect instances have arrived (PATH.arrived.ID), then start together at the instant the first to see them all publishes in PATH.start. Needs --dir; every instance races in DIR/racefree-stress-NAME, which is kept, with each instance\'s report-ID.json, for `racefree stress report`, which removes each round\'s tree once it has verified it. Each instance races its control on its own, in DIR/racefree-stress-NAME/controls-ID, removed as it goes. Use a fresh PATH per run' -r -F
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from makedirs" -l expect -d 'With --barrier-file: how many instances to wait for' -r
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from makedirs" -l id -d 'This instance\'s id [default: OMPI_COMM_WORLD_RANK, SLURM_PROCID, JOB_COMPLETION_INDEX, or 0]' -r
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from makedirs" -l barrier-timeout -d 'With --barrier-file: seconds to wait for the others before giving up' -r
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from makedirs" -l max-entries -d 'With --barrier-file: the directory entries this instance\'s rounds may leave for `stress report`, in total: it races no round that would pass them, and refuses a round larger than them' -r
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from makedirs" -l churn -d 'Also run removers that rmdir directories while the racers create them (as many removals a round as the tree has directories); makedirs\' retries must hold, and the report counts them'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from makedirs" -l keep -d 'Keep the work directory instead of removing it at the end'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from makedirs" -l processes -d 'Racers are separate processes of this binary, released together by closing the pipes they block on'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from makedirs" -l no-control -d 'Run no control arm. By default every run races the known-bad control beside racefree\'s arm, under the same load, and keeps racing past --duration (up to 4 x --duration, or 4 x --rounds) while the control has not failed: a run whose control never failed is INCONCLUSIVE (exit 4). Without a control the verdict is at best "PASS, no control ran"'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from makedirs" -l control -d 'Run the control arm: the default, accepted for old scripts'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from makedirs" -l json -d 'Print the report as JSON on stdout'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from makedirs" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from makedirs" -s V -l version -d 'Print version'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from ident" -l connections -d 'Connection pairs held in each TCP state' -r
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from ident" -l source -d 'Which lookup the racers use' -r -f -a "proc\t''
netlink\t''
both\t''"
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from ident" -l racers -d 'How many racers [default: 4 x cores]' -r
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from ident" -l rounds -d 'Run R rounds, and more while the control has not failed: up to 4 x R' -r
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from ident" -l duration -d 'Run rounds until S seconds have passed (at least one round), and on while the control has not failed: up to 4 x S' -r
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from ident" -l barrier-file -d 'Across hosts: wait at this file on the shared tree until --expect instances have arrived (PATH.arrived.ID), then start together at the instant the first to see them all publishes in PATH.start. Needs --dir; every instance races in DIR/racefree-stress-NAME, which is kept, with each instance\'s report-ID.json, for `racefree stress report`, which removes each round\'s tree once it has verified it. Each instance races its control on its own, in DIR/racefree-stress-NAME/controls-ID, removed as it goes. Use a fresh PATH per run' -r -F
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from ident" -l expect -d 'With --barrier-file: how many instances to wait for' -r
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from ident" -l id -d 'This instance\'s id [default: OMPI_COMM_WORLD_RANK, SLURM_PROCID, JOB_COMPLETION_INDEX, or 0]' -r
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from ident" -l barrier-timeout -d 'With --barrier-file: seconds to wait for the others before giving up' -r
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from ident" -l max-entries -d 'With --barrier-file: the directory entries this instance\'s rounds may leave for `stress report`, in total: it races no round that would pass them, and refuses a round larger than them' -r
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from ident" -l via-server -d 'Also send every lookup over RFC 1413 to a `racefree ident serve --listen` this run starts on loopback, end to end'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from ident" -l processes -d 'Racers are separate processes of this binary, released together by closing the pipes they block on'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from ident" -l no-control -d 'Run no control arm. By default every run races the known-bad control beside racefree\'s arm, under the same load, and keeps racing past --duration (up to 4 x --duration, or 4 x --rounds) while the control has not failed: a run whose control never failed is INCONCLUSIVE (exit 4). Without a control the verdict is at best "PASS, no control ran"'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from ident" -l control -d 'Run the control arm: the default, accepted for old scripts'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from ident" -l json -d 'Print the report as JSON on stdout'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from ident" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from ident" -s V -l version -d 'Print version'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from counter" -l takes -d 'Numbers each racer takes per round' -r
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from counter" -l dir -d 'The tree under test (any mount, network filesystems included); it must exist. The run works in a new subdirectory it creates there [default: $TMPDIR]' -r -F
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from counter" -l racers -d 'How many racers [default: 4 x cores]' -r
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from counter" -l rounds -d 'Run R rounds, and more while the control has not failed: up to 4 x R' -r
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from counter" -l duration -d 'Run rounds until S seconds have passed (at least one round), and on while the control has not failed: up to 4 x S' -r
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from counter" -l barrier-file -d 'Across hosts: wait at this file on the shared tree until --expect instances have arrived (PATH.arrived.ID), then start together at the instant the first to see them all publishes in PATH.start. Needs --dir; every instance races in DIR/racefree-stress-NAME, which is kept, with each instance\'s report-ID.json, for `racefree stress report`, which removes each round\'s tree once it has verified it. Each instance races its control on its own, in DIR/racefree-stress-NAME/controls-ID, removed as it goes. Use a fresh PATH per run' -r -F
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from counter" -l expect -d 'With --barrier-file: how many instances to wait for' -r
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from counter" -l id -d 'This instance\'s id [default: OMPI_COMM_WORLD_RANK, SLURM_PROCID, JOB_COMPLETION_INDEX, or 0]' -r
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from counter" -l barrier-timeout -d 'With --barrier-file: seconds to wait for the others before giving up' -r
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from counter" -l max-entries -d 'With --barrier-file: the directory entries this instance\'s rounds may leave for `stress report`, in total: it races no round that would pass them, and refuses a round larger than them' -r
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from counter" -l keep -d 'Keep the work directory instead of removing it at the end'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from counter" -l processes -d 'Racers are separate processes of this binary, released together by closing the pipes they block on'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from counter" -l no-control -d 'Run no control arm. By default every run races the known-bad control beside racefree\'s arm, under the same load, and keeps racing past --duration (up to 4 x --duration, or 4 x --rounds) while the control has not failed: a run whose control never failed is INCONCLUSIVE (exit 4). Without a control the verdict is at best "PASS, no control ran"'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from counter" -l control -d 'Run the control arm: the default, accepted for old scripts'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from counter" -l json -d 'Print the report as JSON on stdout'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from counter" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from counter" -s V -l version -d 'Print version'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from write" -l versions -d 'Versions each writer writes per round' -r
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from write" -l reads -d 'Reads each reader makes per round at least (and more, until the writers are done)' -r
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from write" -l dir -d 'The tree under test (any mount, network filesystems included); it must exist. The run works in a new subdirectory it creates there [default: $TMPDIR]' -r -F
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from write" -l racers -d 'How many racers [default: 4 x cores]' -r
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from write" -l rounds -d 'Run R rounds, and more while the control has not failed: up to 4 x R' -r
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from write" -l duration -d 'Run rounds until S seconds have passed (at least one round), and on while the control has not failed: up to 4 x S' -r
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from write" -l barrier-file -d 'Across hosts: wait at this file on the shared tree until --expect instances have arrived (PATH.arrived.ID), then start together at the instant the first to see them all publishes in PATH.start. Needs --dir; every instance races in DIR/racefree-stress-NAME, which is kept, with each instance\'s report-ID.json, for `racefree stress report`, which removes each round\'s tree once it has verified it. Each instance races its control on its own, in DIR/racefree-stress-NAME/controls-ID, removed as it goes. Use a fresh PATH per run' -r -F
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from write" -l expect -d 'With --barrier-file: how many instances to wait for' -r
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from write" -l id -d 'This instance\'s id [default: OMPI_COMM_WORLD_RANK, SLURM_PROCID, JOB_COMPLETION_INDEX, or 0]' -r
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from write" -l barrier-timeout -d 'With --barrier-file: seconds to wait for the others before giving up' -r
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from write" -l max-entries -d 'With --barrier-file: the directory entries this instance\'s rounds may leave for `stress report`, in total: it races no round that would pass them, and refuses a round larger than them' -r
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from write" -l keep -d 'Keep the work directory instead of removing it at the end'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from write" -l processes -d 'Racers are separate processes of this binary, released together by closing the pipes they block on'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from write" -l no-control -d 'Run no control arm. By default every run races the known-bad control beside racefree\'s arm, under the same load, and keeps racing past --duration (up to 4 x --duration, or 4 x --rounds) while the control has not failed: a run whose control never failed is INCONCLUSIVE (exit 4). Without a control the verdict is at best "PASS, no control ran"'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from write" -l control -d 'Run the control arm: the default, accepted for old scripts'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from write" -l json -d 'Print the report as JSON on stdout'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from write" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from write" -s V -l version -d 'Print version'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from lock" -l increments -d 'Increments each racer makes per round' -r
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from lock" -l dir -d 'The tree under test (any mount, network filesystems included); it must exist. The run works in a new subdirectory it creates there [default: $TMPDIR]' -r -F
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from lock" -l racers -d 'How many racers [default: 4 x cores]' -r
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from lock" -l rounds -d 'Run R rounds, and more while the control has not failed: up to 4 x R' -r
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from lock" -l duration -d 'Run rounds until S seconds have passed (at least one round), and on while the control has not failed: up to 4 x S' -r
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from lock" -l barrier-file -d 'Across hosts: wait at this file on the shared tree until --expect instances have arrived (PATH.arrived.ID), then start together at the instant the first to see them all publishes in PATH.start. Needs --dir; every instance races in DIR/racefree-stress-NAME, which is kept, with each instance\'s report-ID.json, for `racefree stress report`, which removes each round\'s tree once it has verified it. Each instance races its control on its own, in DIR/racefree-stress-NAME/controls-ID, removed as it goes. Use a fresh PATH per run' -r -F
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from lock" -l expect -d 'With --barrier-file: how many instances to wait for' -r
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from lock" -l id -d 'This instance\'s id [default: OMPI_COMM_WORLD_RANK, SLURM_PROCID, JOB_COMPLETION_INDEX, or 0]' -r
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from lock" -l barrier-timeout -d 'With --barrier-file: seconds to wait for the others before giving up' -r
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from lock" -l max-entries -d 'With --barrier-file: the directory entries this instance\'s rounds may leave for `stress report`, in total: it races no round that would pass them, and refuses a round larger than them' -r
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from lock" -l keep -d 'Keep the work directory instead of removing it at the end'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from lock" -l processes -d 'Racers are separate processes of this binary, released together by closing the pipes they block on'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from lock" -l no-control -d 'Run no control arm. By default every run races the known-bad control beside racefree\'s arm, under the same load, and keeps racing past --duration (up to 4 x --duration, or 4 x --rounds) while the control has not failed: a run whose control never failed is INCONCLUSIVE (exit 4). Without a control the verdict is at best "PASS, no control ran"'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from lock" -l control -d 'Run the control arm: the default, accepted for old scripts'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from lock" -l json -d 'Print the report as JSON on stdout'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from lock" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from lock" -s V -l version -d 'Print version'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from exec" -l template -d 'Copy this directory into each round\'s directory first' -r -F
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from exec" -l setup -d 'Before the racers, run CMD with \'sh -c\' in the round\'s directory (and in the sequential run\'s)' -r
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from exec" -l check -d 'After the racers, run CMD with \'sh -c\' in the round\'s directory: exit 0 means the state is right. RACEFREE_RACERS and RACEFREE_ROUND are set' -r
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from exec" -l ignore -d 'With --compare-sequential: names that may differ; without a \'/\' a name at any depth, with one a path from the round\'s directory (repeatable)' -r
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from exec" -l expect-exit -d 'The exit status every racer must end with' -r
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from exec" -l timeout -d 'Seconds a round\'s racers may run before they count as hung (their process groups are killed, and the round fails)' -r
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from exec" -l widen -d 'Widen race windows by holding back each racer\'s calls that change the filesystem (mkdir, an open for writing, rename, link, unlink). Rounds take turns: every racer\'s first such call held until all racers have reached theirs, then let go together; every such call delayed MS; none held. 0 turns it off. A hold only picks a schedule the kernel could pick itself, so what fails under it is a real race. Racers of a user other than root then run with no_new_privs (setuid programs get no privileges)' -r
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from exec" -l dir -d 'The tree under test (any mount, network filesystems included); it must exist. The run works in a new subdirectory it creates there [default: $TMPDIR]' -r -F
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from exec" -l racers -d 'How many racers [default: 4 x cores]' -r
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from exec" -l rounds -d 'Run R rounds, and more while the control has not failed: up to 4 x R' -r
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from exec" -l duration -d 'Run rounds until S seconds have passed (at least one round), and on while the control has not failed: up to 4 x S' -r
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from exec" -l barrier-file -d 'Across hosts: wait at this file on the shared tree until --expect instances have arrived (PATH.arrived.ID), then start together at the instant the first to see them all publishes in PATH.start. Needs --dir; every instance races in DIR/racefree-stress-NAME, which is kept, with each instance\'s report-ID.json, for `racefree stress report`, which removes each round\'s tree once it has verified it. Each instance races its control on its own, in DIR/racefree-stress-NAME/controls-ID, removed as it goes. Use a fresh PATH per run' -r -F
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from exec" -l expect -d 'With --barrier-file: how many instances to wait for' -r
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from exec" -l id -d 'This instance\'s id [default: OMPI_COMM_WORLD_RANK, SLURM_PROCID, JOB_COMPLETION_INDEX, or 0]' -r
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from exec" -l barrier-timeout -d 'With --barrier-file: seconds to wait for the others before giving up' -r
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from exec" -l max-entries -d 'With --barrier-file: the directory entries this instance\'s rounds may leave for `stress report`, in total: it races no round that would pass them, and refuses a round larger than them' -r
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from exec" -l compare-sequential -d 'The tree the racers leave must equal the one the same commands leave run one after another in a twin directory (names, types, modes, sizes, contents)'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from exec" -l stop-on-first -d 'End the run at the first failing round'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from exec" -l keep -d 'Keep the work directory instead of removing it at the end'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from exec" -l no-control -d 'Run no control arm. By default every run races the known-bad control beside racefree\'s arm, under the same load, and keeps racing past --duration (up to 4 x --duration, or 4 x --rounds) while the control has not failed: a run whose control never failed is INCONCLUSIVE (exit 4). Without a control the verdict is at best "PASS, no control ran"'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from exec" -l control -d 'Run the control arm: the default, accepted for old scripts'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from exec" -l json -d 'Print the report as JSON on stdout'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from exec" -l processes -d 'Racers are separate processes of this binary, released together by closing the pipes they block on'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from exec" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from exec" -s V -l version -d 'Print version'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from report" -l json -d 'Print the merged verdict as JSON'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from report" -l keep -d 'Keep every round\'s tree and the rounds files. By default each round\'s tree goes once it is verified (the first bad rounds\' stay, for inspection), the rounds files and the instances\' control directories go after the verdict, and verdict.json is left beside the reports'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from report" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from report" -s V -l version -d 'Print version'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from worker" -l racer -r
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from worker" -s h -l help -d 'Print help'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from worker" -s V -l version -d 'Print version'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from rmw" -l read
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from rmw" -s h -l help -d 'Print help'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from rmw" -s V -l version -d 'Print version'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from help" -f -a "makedirs" -d 'Racers build the same deep trees at once; every round verified exactly'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from help" -f -a "ident" -d 'Racers look up loopback connections held in every TCP state'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from help" -f -a "counter" -d 'Racers take numbers from one counter file; all distinct, exactly 1..total'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from help" -f -a "write" -d 'Writers replace one file while readers check every read is one whole version'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from help" -f -a "lock" -d 'Racers increment one counter, each read-modify-write under racefree lock'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from help" -f -a "exec" -d 'Race your own command: many copies at once, judged against a sequential run'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from help" -f -a "report" -d 'Merge the reports instances wrote to a shared tree into one verdict'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from help" -f -a "worker" -d 'One racer process (started by --processes; not for direct use)'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from help" -f -a "rmw" -d 'One locked read-modify-write (the COMMAND of stress lock; not for direct use)'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c racefree -n "__fish_racefree_using_subcommand lock" -s c -l command -d 'Run COMMAND_STRING with \'sh -c\', as flock(1) -c does' -r
complete -c racefree -n "__fish_racefree_using_subcommand lock" -s w -l timeout -l wait -d 'Wait at most SECS seconds (fractions allowed; 0 is -n), then fail' -r
complete -c racefree -n "__fish_racefree_using_subcommand lock" -s E -l conflict-exit-code -d 'Exit status when the lock is not acquired (held, with -n or -w)' -r
complete -c racefree -n "__fish_racefree_using_subcommand lock" -s s -l shared -d 'Take a shared lock: any number of shared holders, no exclusive one'
complete -c racefree -n "__fish_racefree_using_subcommand lock" -s x -l exclusive -d 'Take an exclusive lock (the default)'
complete -c racefree -n "__fish_racefree_using_subcommand lock" -s n -l nonblock -l nb -d 'Fail at once if the lock is held, instead of waiting'
complete -c racefree -n "__fish_racefree_using_subcommand lock" -s o -l close -d 'COMMAND does not inherit the lock descriptor; racefree alone holds the lock'
complete -c racefree -n "__fish_racefree_using_subcommand lock" -l nfs -d 'Use the link(2) lock LOCKFILE.nfslock instead of flock (for NFS without locking)'
complete -c racefree -n "__fish_racefree_using_subcommand lock" -l verbose -d 'Say on standard error how long the lock took and what runs'
complete -c racefree -n "__fish_racefree_using_subcommand lock" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c racefree -n "__fish_racefree_using_subcommand lock" -s V -l version -d 'Print version'
complete -c racefree -n "__fish_racefree_using_subcommand counter" -l add -d 'Add N (may be negative)' -r
complete -c racefree -n "__fish_racefree_using_subcommand counter" -l init -d 'The value a new counter starts from, before the first --add' -r
complete -c racefree -n "__fish_racefree_using_subcommand counter" -l sync -d 'fsync the file and its directory before printing the new value'
complete -c racefree -n "__fish_racefree_using_subcommand counter" -l get -d 'Print the current value without changing it or taking the lock (a counter that does not exist yet reads as --init)'
complete -c racefree -n "__fish_racefree_using_subcommand counter" -l json -d 'Print one JSON object: file, value, previous (null when this call created FILE) and created'
complete -c racefree -n "__fish_racefree_using_subcommand counter" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c racefree -n "__fish_racefree_using_subcommand counter" -s V -l version -d 'Print version'
complete -c racefree -n "__fish_racefree_using_subcommand write" -s m -l mode -d 'Mode of the new content: octal (644) or symbolic (u=rw,go=r); default: FILE\'s current mode, or 0666 & ~umask for a new file' -r
complete -c racefree -n "__fish_racefree_using_subcommand write" -l no-follow -d 'A symlink at FILE is replaced by a regular file, instead of replacing its target'
complete -c racefree -n "__fish_racefree_using_subcommand write" -l no-sync -d 'Skip both fsyncs: still atomic for readers, but a crash may lose the new content'
complete -c racefree -n "__fish_racefree_using_subcommand write" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c racefree -n "__fish_racefree_using_subcommand write" -s V -l version -d 'Print version'
complete -c racefree -n "__fish_racefree_using_subcommand help; and not __fish_seen_subcommand_from makedirs ident stress lock counter write help" -f -a "makedirs" -d 'Create directories and their missing ancestors, safely under concurrency'
complete -c racefree -n "__fish_racefree_using_subcommand help; and not __fish_seen_subcommand_from makedirs ident stress lock counter write help" -f -a "ident" -d 'RFC 1413 ident: look up a connection\'s owner, serve identd, or query one'
complete -c racefree -n "__fish_racefree_using_subcommand help; and not __fish_seen_subcommand_from makedirs ident stress lock counter write help" -f -a "stress" -d 'Run parallel racers against every command and verify every answer'
complete -c racefree -n "__fish_racefree_using_subcommand help; and not __fish_seen_subcommand_from makedirs ident stress lock counter write help" -f -a "lock" -d 'Run a command while holding a file lock (flock(1) without its traps)'
complete -c racefree -n "__fish_racefree_using_subcommand help; and not __fish_seen_subcommand_from makedirs ident stress lock counter write help" -f -a "counter" -d 'Add to a number stored in a file, atomically, and print the new value'
complete -c racefree -n "__fish_racefree_using_subcommand help; and not __fish_seen_subcommand_from makedirs ident stress lock counter write help" -f -a "write" -d 'Replace a file\'s content with standard input, atomically and durably'
complete -c racefree -n "__fish_racefree_using_subcommand help; and not __fish_seen_subcommand_from makedirs ident stress lock counter write help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c racefree -n "__fish_racefree_using_subcommand help; and __fish_seen_subcommand_from ident" -f -a "lookup" -d 'Print the user that owns a TCP connection, matched on its 4-tuple only'
complete -c racefree -n "__fish_racefree_using_subcommand help; and __fish_seen_subcommand_from ident" -f -a "serve" -d 'Serve RFC 1413 ident under inetd, systemd socket activation, or standalone'
complete -c racefree -n "__fish_racefree_using_subcommand help; and __fish_seen_subcommand_from ident" -f -a "query" -d 'Ask a host\'s identd who owns a connection'
complete -c racefree -n "__fish_racefree_using_subcommand help; and __fish_seen_subcommand_from stress" -f -a "makedirs" -d 'Racers build the same deep trees at once; every round verified exactly'
complete -c racefree -n "__fish_racefree_using_subcommand help; and __fish_seen_subcommand_from stress" -f -a "ident" -d 'Racers look up loopback connections held in every TCP state'
complete -c racefree -n "__fish_racefree_using_subcommand help; and __fish_seen_subcommand_from stress" -f -a "counter" -d 'Racers take numbers from one counter file; all distinct, exactly 1..total'
complete -c racefree -n "__fish_racefree_using_subcommand help; and __fish_seen_subcommand_from stress" -f -a "write" -d 'Writers replace one file while readers check every read is one whole version'
complete -c racefree -n "__fish_racefree_using_subcommand help; and __fish_seen_subcommand_from stress" -f -a "lock" -d 'Racers increment one counter, each read-modify-write under racefree lock'
complete -c racefree -n "__fish_racefree_using_subcommand help; and __fish_seen_subcommand_from stress" -f -a "exec" -d 'Race your own command: many copies at once, judged against a sequential run'
complete -c racefree -n "__fish_racefree_using_subcommand help; and __fish_seen_subcommand_from stress" -f -a "report" -d 'Merge the reports instances wrote to a shared tree into one verdict'
complete -c racefree -n "__fish_racefree_using_subcommand help; and __fish_seen_subcommand_from stress" -f -a "worker" -d 'One racer process (started by --processes; not for direct use)'
complete -c racefree -n "__fish_racefree_using_subcommand help; and __fish_seen_subcommand_from stress" -f -a "rmw" -d 'One locked read-modify-write (the COMMAND of stress lock; not for direct use)'
