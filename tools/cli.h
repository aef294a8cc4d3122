/* Subcommands and the small option parser they share. */
#ifndef DB_CLI_H
#define DB_CLI_H
int cmd_devices(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_sample(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_demo(int argc, char **argv);

/* Option parsing: every command describes its options in a table; unknown
 * options, missing values and malformed numbers are clear errors. */
typedef enum { OPT_STR, OPT_INT, OPT_FLOAT, OPT_FLAG } opt_kind;
typedef struct { const char *name; opt_kind kind; void *dst; const char *help; } cli_opt;
/* Parses argv[1..]; positional arguments are returned in pos (up to *npos). */
void cli_parse(const char *cmd, const char *usage, cli_opt *opts, int nopts, int argc, char **argv,
               char **pos, int *npos);
#endif
