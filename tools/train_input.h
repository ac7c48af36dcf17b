/*
 * warploss-train's data step (train_input.c), on top of train_data.h: what
 * the command line asks for, read or made, split, summarised on stdout.
 */
#ifndef WL_TRAIN_INPUT_H
#define WL_TRAIN_INPUT_H

#include "train_data.h"
#include "train_options.h"

/* The dataset the settings ask for, with its summary lines (unless --quiet)
 * and the split's files (--write-split): 0, or EXIT_FAIL after a message. */
int train_load_data(const settings *s, td_dataset *d);

#endif
