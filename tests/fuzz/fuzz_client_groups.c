/* fuzz_client_groups.c - fuzz_client with one recipient a transaction
   (TLSMAIL_RCPT_MAX 1): its two recipients go in two transactions on one
   connection, so the grouped send is driven by the same server bytes and
   held to the same invariants (fuzz_client.c), with none of its
   transactions holding more than one RCPT. Seeds: fuzz_client's. */
#define TLSMAIL_RCPT_MAX 1
#include "fuzz_client.c"
