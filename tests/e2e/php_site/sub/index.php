<?php
// A sub-folder's index: /sub/ runs it.
echo 'sub index';
