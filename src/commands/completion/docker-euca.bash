# bash completion for docker-euca, the docker CLI plugin run directly (`docker euca …` is completed
# by docker's own completion, which asks the plugin the same way). Made by `docker-euca completion
# bash`; candidates come from `docker-euca __complete euca WORDS…` (machine names included).
_docker_euca() {
    local cur words cword
    if declare -F _get_comp_words_by_ref >/dev/null; then
        _get_comp_words_by_ref -n =: cur words cword
    else
        words=("${COMP_WORDS[@]}") cword=$COMP_CWORD cur=${COMP_WORDS[COMP_CWORD]}
    fi
    local line directive=0 candidates=()
    while IFS= read -r line; do
        case $line in
            :*) directive=${line#:} ;;
            *) candidates+=("${line%%$'\t'*}") ;;
        esac
    done < <("${words[0]}" __completeNoDesc euca "${words[@]:1:cword-1}" "$cur" 2>/dev/null)
    COMPREPLY=()
    local c
    for c in "${candidates[@]}"; do [[ $c == "$cur"* ]] && COMPREPLY+=("$c"); done
    # cobra's ShellCompDirectiveNoSpace (2): a "machine:" prefix goes on with a path
    if (( directive & 2 )); then compopt -o nospace 2>/dev/null; fi
    if declare -F __ltrim_colon_completions >/dev/null; then __ltrim_colon_completions "$cur"; fi
}
complete -F _docker_euca docker-euca
