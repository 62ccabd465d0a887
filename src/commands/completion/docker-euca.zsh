#compdef docker-euca
# zsh completion for docker-euca, the docker CLI plugin run directly (`docker euca …` is completed
# by docker's own completion, which asks the plugin the same way). Made by `docker-euca completion
# zsh`; candidates come from `docker-euca __complete euca WORDS…` (machine names included).
_docker-euca() {
    local line directive=0
    local -a candidates lines
    lines=("${(@f)$("${words[1]}" __complete euca "${(@)words[2,CURRENT]}" 2>/dev/null)}")
    for line in $lines; do
        if [[ $line == :* ]]; then
            directive=${line#:}
        else
            # value<TAB>description, as _describe wants it: value:description, colons escaped
            local value=${line%%$'\t'*} help=
            [[ $line == *$'\t'* ]] && help=${line#*$'\t'}
            candidates+=("${value//:/\\:}${help:+:$help}")
        fi
    done
    # cobra's ShellCompDirectiveNoSpace (2): a "machine:" prefix goes on with a path
    if (( directive & 2 )); then
        _describe -t values 'docker euca' candidates -S ''
    else
        _describe -t values 'docker euca' candidates
    fi
}
if [[ $funcstack[1] == _docker-euca ]]; then
    _docker-euca "$@"
else
    compdef _docker-euca docker-euca
fi
