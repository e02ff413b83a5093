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
complete -c racefree -n "__fish_racefree_using_subcommand ident" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c racefree -n "__fish_racefree_using_subcommand ident" -s V -l version -d 'Print version'
complete -c racefree -n "__fish_racefree_using_subcommand stress" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c racefree -n "__fish_racefree_using_subcommand stress" -s V -l version -d 'Print version'
complete -c racefree -n "__fish_racefree_using_subcommand help; and not __fish_seen_subcommand_from makedirs ident stress help" -f -a "makedirs" -d 'Create directories and their missing ancestors, safely under concurrency'
complete -c racefree -n "__fish_racefree_using_subcommand help; and not __fish_seen_subcommand_from makedirs ident stress help" -f -a "ident" -d 'RFC 1413 ident: look up a connection\'s owner, serve identd, or query one'
complete -c racefree -n "__fish_racefree_using_subcommand help; and not __fish_seen_subcommand_from makedirs ident stress help" -f -a "stress" -d 'Run parallel racers against makedirs and ident and verify every answer'
complete -c racefree -n "__fish_racefree_using_subcommand help; and not __fish_seen_subcommand_from makedirs ident stress help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
