#include <pocketsphinx.h>
#include <sphinxbase/feat.h>
#include <sphinxbase/cmn.h>
