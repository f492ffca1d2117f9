"""The command-line tools: train, eval, generate, export, train_evaluator, each a main(argv) -> exit
code. Installed, they are the commands paddle-gan-train, paddle-gan-eval, ... (setup.py); in a
clone, tools/<name>.py runs the same main."""
