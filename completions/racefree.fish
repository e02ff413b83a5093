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
complete -c racefree -n "__fish_racefree_needs_command" -f -a "stress" -d 'Run parallel racers against makedirs and ident and verify every answer'
complete -c racefree -n "__fish_racefree_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c racefree -n "__fish_racefree_using_subcommand makedirs" -s m -l mode -d 'Mode of each leaf this call creates: octal (755) or symbolic (u=rwx,g=rx,o=)' -r
complete -c racefree -n "__fish_racefree_using_subcommand makedirs" -l beneath -d 'Resolve each PATH relative to DIR and never leave DIR (openat2 RESOLVE_BENEATH): \'..\' and symlinks that would escape are errors' -r -F
complete -c racefree -n "__fish_racefree_using_subcommand makedirs" -l from -d 'Read paths from FILE (\'-\' for standard input), one per line, in addition to any PATH arguments' -r -F
complete -c racefree -n "__fish_racefree_using_subcommand makedirs" -s j -l jobs -d 'How many paths to work on at once [default: the number of cores]' -r
complete -c racefree -n "__fish_racefree_using_subcommand makedirs" -l attempts -d 'How many times to start over when the tree changes under the walk' -r
complete -c racefree -n "__fish_racefree_using_subcommand makedirs" -s v -l verbose -d 'Print "racefree: created directory \'P\'" for each directory this process created'
complete -c racefree -n "__fish_racefree_using_subcommand makedirs" -l no-symlinks -d 'Refuse every symlink in the path; walk one component at a time with openat(O_NOFOLLOW) and mkdirat from the first component. Safe in world-writable directories, where a component could be swapped for a symlink mid-walk'
complete -c racefree -n "__fish_racefree_using_subcommand makedirs" -l exclusive -d 'Ancestors may already exist, but the leaf must be created by this call (the mkdir-as-a-lock idiom); exit 3 if it already exists'
complete -c racefree -n "__fish_racefree_using_subcommand makedirs" -s 0 -l null -d 'With --from: paths are separated by NUL bytes, not newlines'
complete -c racefree -n "__fish_racefree_using_subcommand makedirs" -l json -d 'Print one JSON object per path on stdout: path, directory, created, retries, error'
complete -c racefree -n "__fish_racefree_using_subcommand makedirs" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c racefree -n "__fish_racefree_using_subcommand makedirs" -s V -l version -d 'Print version'
complete -c racefree -n "__fish_racefree_using_subcommand ident; and not __fish_seen_subcommand_from lookup serve query help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c racefree -n "__fish_racefree_using_subcommand ident; and not __fish_seen_subcommand_from lookup serve query help" -s V -l version -d 'Print version'
complete -c racefree -n "__fish_racefree_using_subcommand ident; and not __fish_seen_subcommand_from lookup serve query help" -f -a "lookup" -d 'Print the user that owns a TCP connection, matched on its 4-tuple only'
complete -c racefree -n "__fish_racefree_using_subcommand ident; and not __fish_seen_subcommand_from lookup serve query help" -f -a "serve" -d 'Serve RFC 1413 ident under inetd, systemd socket activation, or standalone'
complete -c racefree -n "__fish_racefree_using_subcommand ident; and not __fish_seen_subcommand_from lookup serve query help" -f -a "query" -d 'Ask a host\'s identd who owns a connection'
complete -c racefree -n "__fish_racefree_using_subcommand ident; and not __fish_seen_subcommand_from lookup serve query help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c racefree -n "__fish_racefree_using_subcommand ident; and __fish_seen_subcommand_from lookup" -l source -d 'Where to read the kernel\'s socket table' -r -f -a "proc\t'`/proc/net/tcp` and `/proc/net/tcp6`, scanned for the tuple'
netlink\t'The kernel\'s sock_diag exact lookup: one request, constant time'
auto\t'Netlink, falling back to /proc when netlink sock_diag is unavailable'"
complete -c racefree -n "__fish_racefree_using_subcommand ident; and __fish_seen_subcommand_from lookup" -l forward -d 'With --nat: ask the identd of a host behind this one (not a container here) on PORT, and relay its answer' -r
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
complete -c racefree -n "__fish_racefree_using_subcommand ident; and __fish_seen_subcommand_from serve" -l user -d 'After binding, drop to this user (setgroups, setgid, setuid) and verify the drop' -r
complete -c racefree -n "__fish_racefree_using_subcommand ident; and __fish_seen_subcommand_from serve" -l hide -d 'Answer HIDDEN-USER for this user (name or uid); repeatable' -r
complete -c racefree -n "__fish_racefree_using_subcommand ident; and __fish_seen_subcommand_from serve" -l source -d 'Where to read the kernel\'s socket table' -r -f -a "proc\t'`/proc/net/tcp` and `/proc/net/tcp6`, scanned for the tuple'
netlink\t'The kernel\'s sock_diag exact lookup: one request, constant time'
auto\t'Netlink, falling back to /proc when netlink sock_diag is unavailable'"
complete -c racefree -n "__fish_racefree_using_subcommand ident; and __fish_seen_subcommand_from serve" -l forward -d 'With --nat: ask the identd of a host behind this one (not a container here) on PORT, and relay its answer' -r
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
complete -c racefree -n "__fish_racefree_using_subcommand stress; and not __fish_seen_subcommand_from makedirs ident report worker help" -l duration -d 'Seconds for each of the two modes' -r
complete -c racefree -n "__fish_racefree_using_subcommand stress; and not __fish_seen_subcommand_from makedirs ident report worker help" -l racers -d 'Racers per mode [default: 4 x cores]' -r
complete -c racefree -n "__fish_racefree_using_subcommand stress; and not __fish_seen_subcommand_from makedirs ident report worker help" -l processes -d 'Racers are separate processes of this binary instead of threads'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and not __fish_seen_subcommand_from makedirs ident report worker help" -l json -d 'Print the report as JSON on stdout'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and not __fish_seen_subcommand_from makedirs ident report worker help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and not __fish_seen_subcommand_from makedirs ident report worker help" -s V -l version -d 'Print version'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and not __fish_seen_subcommand_from makedirs ident report worker help" -f -a "makedirs" -d 'Racers build the same deep trees at once; every round verified exactly'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and not __fish_seen_subcommand_from makedirs ident report worker help" -f -a "ident" -d 'Racers look up loopback connections held in every TCP state'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and not __fish_seen_subcommand_from makedirs ident report worker help" -f -a "report" -d 'Merge the JSON reports instances wrote to a shared tree into one verdict'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and not __fish_seen_subcommand_from makedirs ident report worker help" -f -a "worker" -d 'One racer process (started by --processes; not for direct use)'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and not __fish_seen_subcommand_from makedirs ident report worker help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from makedirs" -l dir -d 'The tree under test (any mount, network filesystems included). The run works in a new subdirectory it creates there [default: a fresh temporary directory]' -r -F
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from makedirs" -l depth -d 'Levels below each round\'s directory' -r
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from makedirs" -l fanout -d 'Subdirectories per level (fanout^depth leaf paths per round)' -r
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from makedirs" -l racers -d 'How many racers [default: 4 x cores]' -r
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from makedirs" -l rounds -d 'Run exactly R rounds' -r
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from makedirs" -l duration -d 'Run rounds until S seconds have passed (at least one round)' -r
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from makedirs" -l barrier-file -d 'Across hosts: wait at this file on the shared tree until --expect instances have arrived, then start together. Needs --dir; every instance races in DIR/racefree-stress-NAME, which is kept, with each instance\'s report-ID.json, for `racefree stress report`. Use a fresh PATH per run' -r -F
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from makedirs" -l expect -d 'With --barrier-file: how many instances to wait for' -r
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from makedirs" -l id -d 'This instance\'s id [default: SLURM_PROCID, OMPI_COMM_WORLD_RANK, JOB_COMPLETION_INDEX, or 0]' -r
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from makedirs" -l barrier-timeout -d 'With --barrier-file: seconds to wait for the others before giving up' -r
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from makedirs" -l churn -d 'Also run removers that rmdir directories while the racers create them; makedirs\' retries must hold, and the report counts them'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from makedirs" -l keep -d 'Keep the work directory instead of removing it at the end'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from makedirs" -l processes -d 'Racers are separate processes of this binary, released together by closing the pipes they block on'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from makedirs" -l control -d 'Also run the known-bad control arm under the same load and report its failures beside racefree\'s (the exit status ignores them)'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from makedirs" -l json -d 'Print the report as JSON on stdout'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from makedirs" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from makedirs" -s V -l version -d 'Print version'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from ident" -l connections -d 'Connection pairs held in each TCP state' -r
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from ident" -l source -d 'Which lookup the racers use' -r -f -a "proc\t''
netlink\t''
both\t''"
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from ident" -l racers -d 'How many racers [default: 4 x cores]' -r
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from ident" -l rounds -d 'Run exactly R rounds' -r
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from ident" -l duration -d 'Run rounds until S seconds have passed (at least one round)' -r
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from ident" -l barrier-file -d 'Across hosts: wait at this file on the shared tree until --expect instances have arrived, then start together. Needs --dir; every instance races in DIR/racefree-stress-NAME, which is kept, with each instance\'s report-ID.json, for `racefree stress report`. Use a fresh PATH per run' -r -F
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from ident" -l expect -d 'With --barrier-file: how many instances to wait for' -r
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from ident" -l id -d 'This instance\'s id [default: SLURM_PROCID, OMPI_COMM_WORLD_RANK, JOB_COMPLETION_INDEX, or 0]' -r
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from ident" -l barrier-timeout -d 'With --barrier-file: seconds to wait for the others before giving up' -r
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from ident" -l via-server -d 'Also send every lookup over RFC 1413 to a `racefree ident serve --listen` this run starts on loopback, end to end'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from ident" -l processes -d 'Racers are separate processes of this binary, released together by closing the pipes they block on'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from ident" -l control -d 'Also run the known-bad control arm under the same load and report its failures beside racefree\'s (the exit status ignores them)'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from ident" -l json -d 'Print the report as JSON on stdout'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from ident" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from ident" -s V -l version -d 'Print version'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from report" -l json -d 'Print the merged verdict as JSON'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from report" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from report" -s V -l version -d 'Print version'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from worker" -s h -l help -d 'Print help'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from worker" -s V -l version -d 'Print version'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from worker" -f -a "makedirs" -d 'The body of a racer process (`racefree stress worker makedirs`)'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from worker" -f -a "ident"
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from worker" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from help" -f -a "makedirs" -d 'Racers build the same deep trees at once; every round verified exactly'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from help" -f -a "ident" -d 'Racers look up loopback connections held in every TCP state'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from help" -f -a "report" -d 'Merge the JSON reports instances wrote to a shared tree into one verdict'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from help" -f -a "worker" -d 'One racer process (started by --processes; not for direct use)'
complete -c racefree -n "__fish_racefree_using_subcommand stress; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c racefree -n "__fish_racefree_using_subcommand help; and not __fish_seen_subcommand_from makedirs ident stress help" -f -a "makedirs" -d 'Create directories and their missing ancestors, safely under concurrency'
complete -c racefree -n "__fish_racefree_using_subcommand help; and not __fish_seen_subcommand_from makedirs ident stress help" -f -a "ident" -d 'RFC 1413 ident: look up a connection\'s owner, serve identd, or query one'
complete -c racefree -n "__fish_racefree_using_subcommand help; and not __fish_seen_subcommand_from makedirs ident stress help" -f -a "stress" -d 'Run parallel racers against makedirs and ident and verify every answer'
complete -c racefree -n "__fish_racefree_using_subcommand help; and not __fish_seen_subcommand_from makedirs ident stress help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c racefree -n "__fish_racefree_using_subcommand help; and __fish_seen_subcommand_from ident" -f -a "lookup" -d 'Print the user that owns a TCP connection, matched on its 4-tuple only'
complete -c racefree -n "__fish_racefree_using_subcommand help; and __fish_seen_subcommand_from ident" -f -a "serve" -d 'Serve RFC 1413 ident under inetd, systemd socket activation, or standalone'
complete -c racefree -n "__fish_racefree_using_subcommand help; and __fish_seen_subcommand_from ident" -f -a "query" -d 'Ask a host\'s identd who owns a connection'
complete -c racefree -n "__fish_racefree_using_subcommand help; and __fish_seen_subcommand_from stress" -f -a "makedirs" -d 'Racers build the same deep trees at once; every round verified exactly'
complete -c racefree -n "__fish_racefree_using_subcommand help; and __fish_seen_subcommand_from stress" -f -a "ident" -d 'Racers look up loopback connections held in every TCP state'
complete -c racefree -n "__fish_racefree_using_subcommand help; and __fish_seen_subcommand_from stress" -f -a "report" -d 'Merge the JSON reports instances wrote to a shared tree into one verdict'
complete -c racefree -n "__fish_racefree_using_subcommand help; and __fish_seen_subcommand_from stress" -f -a "worker" -d 'One racer process (started by --processes; not for direct use)'
