package main

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

func init() { extraCommands = append(extraCommands, completionCommand()) }

// The bash and zsh scripts ask the hall binary itself for the candidates
// (urfave/cli's --generate-bash-completion), so they follow the commands and
// flags of the installed version.
const bashCompletion = `# bash completion for hall: source <(hall completion bash)
_hall_complete() {
  local cur opts
  COMPREPLY=()
  cur="${COMP_WORDS[COMP_CWORD]}"
  if [[ "$cur" == -* ]]; then
    opts=$("${COMP_WORDS[@]:0:$COMP_CWORD}" "$cur" --generate-bash-completion 2>/dev/null)
  else
    opts=$("${COMP_WORDS[@]:0:$COMP_CWORD}" --generate-bash-completion 2>/dev/null)
  fi
  COMPREPLY=($(compgen -W "$opts" -- "$cur"))
}
complete -o bashdefault -o default -F _hall_complete hall
`

const zshCompletion = `#compdef hall
# zsh completion for hall: source <(hall completion zsh)
_hall() {
  local -a opts
  local cur=${words[-1]}
  if [[ "$cur" == -* ]]; then
    opts=("${(@f)$(${words[@]:0:#words[@]-1} "$cur" --generate-bash-completion 2>/dev/null)}")
  else
    opts=("${(@f)$(${words[@]:0:#words[@]-1} --generate-bash-completion 2>/dev/null)}")
  fi
  if [[ "${opts[1]}" != "" ]]; then
    _describe 'values' opts
  else
    _files
  fi
}
compdef _hall hall
`

func completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script: bash, zsh or fish",
		ArgsUsage: "bash|zsh|fish",
		Description: "bash:  source <(hall completion bash)   (or save it in /etc/bash_completion.d/hall)\n" +
			"zsh:   source <(hall completion zsh)\n" +
			"fish:  hall completion fish > ~/.config/fish/completions/hall.fish",
		Action: func(c *cli.Context) error {
			switch c.Args().First() {
			case "bash":
				fmt.Fprint(c.App.Writer, bashCompletion)
			case "zsh":
				fmt.Fprint(c.App.Writer, zshCompletion)
			case "fish":
				s, err := c.App.ToFishCompletion()
				if err != nil {
					return failf("fish completion: %v", err)
				}
				fmt.Fprint(c.App.Writer, s)
			case "":
				return usageErrorf("completion", "completion needs a shell: bash, zsh or fish")
			default:
				msg := fmt.Sprintf("unknown shell %q: bash, zsh or fish", c.Args().First())
				if s := suggestOne(c.Args().First(), []string{"bash", "zsh", "fish"}); s != "" {
					msg += fmt.Sprintf(" (did you mean %q?)", s)
				}
				return usageErrorf("completion", "%s", msg)
			}
			return nil
		},
	}
}
