
use builtin;
use str;

set edit:completion:arg-completer[racefree] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'racefree'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'racefree'= {
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand makedirs 'Create directories and their missing ancestors, safely under concurrency'
            cand ident 'RFC 1413 ident: look up a connection''s owner, serve identd, or query one'
            cand stress 'Run parallel racers against makedirs and ident and verify every answer'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'racefree;makedirs'= {
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'racefree;ident'= {
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'racefree;stress'= {
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'racefree;help'= {
            cand makedirs 'Create directories and their missing ancestors, safely under concurrency'
            cand ident 'RFC 1413 ident: look up a connection''s owner, serve identd, or query one'
            cand stress 'Run parallel racers against makedirs and ident and verify every answer'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'racefree;help;makedirs'= {
        }
        &'racefree;help;ident'= {
        }
        &'racefree;help;stress'= {
        }
        &'racefree;help;help'= {
        }
    ]
    $completions[$command]
}
