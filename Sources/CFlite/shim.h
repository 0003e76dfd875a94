#include <flite/flite.h>
// Debian ships no voice headers.
cst_voice *register_cmu_us_kal16(const char *voxdir);
