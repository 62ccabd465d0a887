# fish completion for docker-euca, the docker CLI plugin run directly (`docker euca …` is completed
# by docker's own completion, which asks the plugin the same way). Made by `docker-euca completion
# fish`; candidates come from `docker-euca __complete euca WORDS…` (machine names included).
function __docker_euca_candidates
    set -l words (commandline -opc)
    $words[1] __complete euca $words[2..-1] (commandline -ct) 2>/dev/null | string match -v -r '^:'
end
complete -c docker-euca -f -a '(__docker_euca_candidates)'
