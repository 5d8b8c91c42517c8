/* check.h - compare the catalogue with the share; report, never change.
 *
 * What snapfs-check reports, one line per disagreement:
 *   missing    a file the catalogue names (a volume's base or active file,
 *              a snapshot's overlay or data, a hidden layer) is not on
 *              the share
 *   unknown    a volume file (volume-<uuid>, volume-<uuid>.<uuid>, .info)
 *              that no catalogue object owns: of a volume the catalogue
 *              does not know (whether -o import= would take it in, or why
 *              not), or of a known volume (manageable/ lists it)
 *   info       a volume's .info disagrees with the catalogue: its active
 *              file, a snapshot's key missing or naming another file, a
 *              key the catalogue does not know, or no .info where one is
 *              needed
 *   backing    an overlay's qcow2 header names another backing file than
 *              the catalogue's chain, a base has a backing file, a file
 *              cannot be read as the format the catalogue says
 *   operation  an operation recorded in the catalogue whose host is gone
 *              (left by a crash: the next mount finishes or undoes it)
 * An operation that a live snapfs is running is printed as a note and not
 * counted; the files of its volume are not compared (they change under
 * it). Thread rule: single-threaded; reads the catalogue in one read
 * transaction and the share's directory and headers, writes nothing.
 */
#ifndef SNAPFS_CHECK_H
#define SNAPFS_CHECK_H

#include <stdbool.h>
#include <stdio.h>

#include "catalog.h"
#include "share.h"

/* Compare cat with share and print one line per finding to out. live:
 * a snapfs has the catalogue open now (its operations may be under way;
 * with etcd each operation's host is asked instead). Returns the number
 * of disagreements (>= 0), or -errno when the catalogue or the share
 * could not be read. */
int check_run(struct catalog *cat, struct share *share, bool live, FILE *out);

#endif
