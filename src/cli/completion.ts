// `fdbroker completion bash|zsh|fish`: print a completion script generated from the commands themselves.
import { Argument, Command } from "commander";
import { completionScript, SHELLS, type Shell } from "./completion-scripts.ts";
import { printText } from "./output.ts";
import { commandReference } from "./reference.ts";

export function command(): Command {
  return new Command("completion")
    .description("print a shell completion script")
    .addArgument(new Argument("<SHELL>", "bash, zsh or fish").choices(SHELLS))
    .addHelpText("after", `
Examples:
  fdbroker completion bash > /etc/bash_completion.d/fdbroker
  fdbroker completion zsh > "\${fpath[1]}/_fdbroker"
  fdbroker completion fish > ~/.config/fish/completions/fdbroker.fish`)
    .action(async (shell: Shell) => {
      printText(completionScript(shell, await commandReference()));
    });
}
