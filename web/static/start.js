'use strict';
// Loaded last: every page has registered itself.
btslave.start();
